"""Parsing and validation of GraphQL documents, with limits and bounded caches.

A catalog request spends a third of its time parsing and validating. The same few
documents arrive again and again, so both steps are cached by the document text,
in least-recently-used caches with a bound, so a flood of unique documents cannot
grow memory.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, specified_rules, validate
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule

from config import Limits

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A least-recently-used map that never holds more than `size` entries."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True, slots=True)
class Parsed:
    document: DocumentNode | None
    errors: tuple[GraphQLError, ...] = ()


class Documents:
    """Turns query text into a validated document, or the errors that explain why not."""

    def __init__(self, schema: GraphQLSchema, limits: Limits) -> None:
        self._schema = schema
        self._limits = limits
        self._rules = (
            *specified_rules,
            max_depth_rule(limits.max_depth, should_ignore=None),
            max_aliases_rule(limits.max_aliases),
        )
        self._parsed: BoundedCache[str, Parsed] = BoundedCache(limits.document_cache_size)
        self._validated: BoundedCache[str, tuple[GraphQLError, ...]] = BoundedCache(
            limits.document_cache_size
        )

    def parse(self, query: str) -> Parsed:
        cached = self._parsed.get(query)
        if cached is not None:
            return cached
        try:
            parsed = Parsed(parse(query, max_tokens=self._limits.max_tokens, no_location=False))
        except GraphQLError as error:
            parsed = Parsed(None, (error,))
        self._parsed.put(query, parsed)
        return parsed

    def validate(self, query: str, document: DocumentNode) -> tuple[GraphQLError, ...]:
        cached = self._validated.get(query)
        if cached is not None:
            return cached
        errors = tuple(validate(self._schema, document, self._rules))
        self._validated.put(query, errors)
        return errors
