"""Parsing and validation of GraphQL documents, with limits and bounded caches.

A catalog request spends a third of its time parsing and validating. The same few
documents arrive again and again, so both steps are cached by the document text,
in least-recently-used caches with a bound, so a flood of unique documents cannot
grow memory.

The public (callers without a partner or operator key, in production) do not see the
schema: introspection (`__schema`, `__type`) is refused, and validation errors do not
suggest field, argument or type names ("Did you mean …"), which would spell it out.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from graphql import (
    DocumentNode,
    NoSchemaIntrospectionCustomRule,
    GraphQLError,
    GraphQLSchema,
    FieldNode,
    StringValueNode,
    ValidationRule,
    ValuesOfCorrectTypeRule,
    parse,
    specified_rules,
    validate,
)
from strawberry.extensions.max_aliases import create_validator as max_aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as max_depth_rule

from config import Limits
from transport.literals import ValuesOfCorrectType

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
            *(ValuesOfCorrectType if rule is ValuesOfCorrectTypeRule else rule for rule in specified_rules),
            max_depth_rule(limits.max_depth, should_ignore=None),
            max_aliases_rule(limits.max_aliases),
            NoNulCharacters,
        )
        self._public_rules = (*self._rules, NoSchemaIntrospectionCustomRule, NoSubgraphSchema)
        self._parsed: BoundedCache[str, Parsed] = BoundedCache(limits.document_cache_size)
        self._validated: BoundedCache[tuple[bool, str], tuple[GraphQLError, ...]] = BoundedCache(
            limits.document_cache_size
        )

    def known(self, query: str) -> bool:
        """Whether this text was parsed lately (its parse costs a lookup)."""
        return self._parsed.get(query) is not None

    def parse(self, query: str) -> Parsed:
        cached = self._parsed.get(query)
        if cached is not None:
            return cached
        try:
            # The spec requires a selection set to select something; `{ }` is a syntax error.
            document = parse(
                query, max_tokens=self._limits.max_tokens, no_location=False, allow_empty_selection_sets=False
            )
            parsed = Parsed(document)
        except GraphQLError as error:
            parsed = Parsed(None, (error,))
        self._parsed.put(query, parsed)
        return parsed

    def validate(self, query: str, document: DocumentNode, *, public: bool = False) -> tuple[GraphQLError, ...]:
        """`public`: for a caller who may not see the schema (no introspection, no suggestions)."""
        cached = self._validated.get((public, query))
        if cached is not None:
            return cached
        if public:
            errors = tuple(validate(self._schema, document, self._public_rules, hide_suggestions=True))
        else:
            errors = tuple(validate(self._schema, document, self._rules))
        self._validated.put((public, query), errors)
        return errors


NUL_MESSAGE = "strings may not contain the character U+0000"


class NoSubgraphSchema(ValidationRule):
    """A federated gateway's `_service { sdl }` is the whole schema: like introspection, it is
    for partner and operator keys (or everyone with QUANYI_PUBLIC_INTROSPECTION)."""

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        if node.name.value == "_service":
            self.report_error(GraphQLError(
                "the subgraph's schema (_service) is for partner and operator keys", node,
                extensions={"code": "FORBIDDEN"},
            ))


class NoNulCharacters(ValidationRule):
    """PostgreSQL text cannot hold U+0000, so no real input has it; refuse it at the door
    rather than let the database fail mid-query with an internal error."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if "\x00" in node.value:
            self.report_error(
                GraphQLError(NUL_MESSAGE, node, extensions={"code": "BAD_USER_INPUT"})
            )


def has_nul_character(value: Any) -> bool:
    """Whether a JSON value (variables, say) holds U+0000 in any string, key or element."""
    # A loop, not recursion: JSON nested a thousand deep is legal and must not overflow.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
