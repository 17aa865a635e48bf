"""A floor under a large query's requested cost, read from its tokens before it is parsed.

Parsing a 7 KB document with graphql-core takes longer than costing it, so a document far too
costly to run is best refused before that work. This reads the first operation's selections
from a regular-expression tokenizer and applies the cost rules of transport/cost.py, counting
only what it is sure of: fragments, fields under abstract types, fields with directives,
unknown fields and `first` given by a variable count nothing, and fields under one response
key count as the dearest of them (execution merges them, which only costs more). The result
is therefore never above the cost the parsed document would get, and a document above the
maximum by this floor is above it by the full count too. Anything it cannot read is 0: the
parser and the full count decide as before.
"""

from __future__ import annotations

import re

from graphql import GraphQLObjectType, is_composite_type

from transport.cost import CONNECTION_COST, INTROSPECTION_COST, MAX_WALK_DEPTH, OBJECT_COST, VALUE_TYPES, QueryCost

_TOKENS = re.compile(
    r'(?P<skip>[\s,\ufeff]+|#[^\n\r]*)'
    r'|(?P<block>"""(?:\\"""|[^"]|"(?!""))*""")'
    r'|(?P<string>"(?:\\.|[^"\\\n\r])*")'
    r"|(?P<spread>\.\.\.)"
    r"|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<punct>[!$&():=@\[\]{|}])"
)
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]*\Z")
_INT = re.compile(r"-?\d+\Z")
_OPENS = {"{": "}", "(": ")", "[": "]"}


class Unreadable(Exception):
    """The tokens are not what this reader understands: leave the document to the parser."""


class CostFloor:
    def __init__(self, cost: QueryCost, *, max_tokens: int) -> None:
        self._cost = cost
        self._max_tokens = max_tokens

    def requested(self, text: str) -> int:
        """A floor under the requested cost of the document's only query, or 0."""
        tokens = self._tokens(text)
        if not tokens:
            return 0
        try:
            start = self._operation_start(tokens)
            root = self._cost._schema.query_type  # noqa: SLF001 - the schema the costs are of
            if start is None or root is None:
                return 0
            total, end = self._selection(tokens, start, root, None, 0)
            if not self._only_fragments_after(tokens, end):
                return 0
            return total
        except (Unreadable, IndexError):
            return 0

    def _tokens(self, text: str) -> list[str] | None:
        tokens: list[str] = []
        position = 0
        for match in _TOKENS.finditer(text):
            if match.start() != position:
                return None  # a character no rule reads: the parser will say what is wrong
            position = match.end()
            kind = match.lastgroup
            if kind == "skip":
                continue
            tokens.append('"' if kind in ("block", "string") else match.group())
            if len(tokens) > self._max_tokens:
                return None
        return tokens if position == len(text) else None

    @staticmethod
    def _operation_start(tokens: list[str]) -> int | None:
        """Where the selection set of a leading query operation opens."""
        if tokens[0] == "{":
            return 0
        if tokens[0] != "query":
            return None
        depth = 0
        for index, token in enumerate(tokens):
            if token in ("(", "["):
                depth += 1
            elif token in (")", "]"):
                depth -= 1
            elif token == "{" and depth == 0:
                return index
        return None

    @staticmethod
    def _only_fragments_after(tokens: list[str], index: int) -> bool:
        """Whether every definition after the operation is a fragment: with a second
        operation, the one that runs depends on operationName."""
        depth = 0
        expect_definition = True
        for token in tokens[index:]:
            if depth == 0 and expect_definition:
                if token != "fragment":
                    return False
                expect_definition = False
            if token in _OPENS:
                depth += 1
            elif token in ("}", ")", "]"):
                depth -= 1
                if depth == 0 and token == "}":
                    expect_definition = True
        return True

    @staticmethod
    def _skip(tokens: list[str], index: int) -> int:
        """The index after the bracketed group that opens at `index`."""
        depth = 0
        while True:
            token = tokens[index]
            if token in _OPENS:
                depth += 1
            elif token in ("}", ")", "]"):
                depth -= 1
                if depth == 0:
                    return index + 1
            index += 1

    def _arguments(self, tokens: list[str], index: int) -> tuple[int | None, bool, int]:
        """(`first` when an integer literal, whether `first` is given at all, the index after)."""
        end = self._skip(tokens, index)
        first, given = None, False
        depth = 0
        for position in range(index, end):
            token = tokens[position]
            if token in _OPENS:
                depth += 1
            elif token in ("}", ")", "]"):
                depth -= 1
            elif depth == 1 and token == "first" and tokens[position + 1] == ":":
                given = True
                value = tokens[position + 2]
                first = int(value) if _INT.match(value) else None
        return first, given, end

    def _selection(self, tokens: list[str], index: int, parent: GraphQLObjectType | None,
                   edges: int | None, depth: int) -> tuple[int, int]:
        if tokens[index] != "{":
            raise Unreadable
        if parent is None or depth > MAX_WALK_DEPTH:
            return 0, self._skip(tokens, index)
        index += 1
        by_key: dict[str, int] = {}
        while tokens[index] != "}":
            token = tokens[index]
            if token == "...":  # a spread or an inline fragment: counted as nothing
                index += 1
                if tokens[index] == "on":
                    index += 2
                elif tokens[index] not in ("@", "{"):
                    index += 1
                while tokens[index] == "@":
                    index += 2
                    if tokens[index] == "(":
                        index = self._skip(tokens, index)
                if tokens[index] == "{":
                    index = self._skip(tokens, index)
                continue
            if not _NAME.match(token):
                raise Unreadable
            key = name = token
            index += 1
            if tokens[index] == ":":
                name = tokens[index + 1]
                if not _NAME.match(name):
                    raise Unreadable
                index += 2
            first, first_given = None, False
            if tokens[index] == "(":
                first, first_given, index = self._arguments(tokens, index)
            directed = False
            while tokens[index] == "@":
                directed = True
                index += 2
                if tokens[index] == "(":
                    index = self._skip(tokens, index)
            facts = None
            if not directed and name != "__typename" and name not in INTROSPECTION_COST:
                facts = self._cost.field(parent, name)
            has_block = tokens[index] == "{"
            if facts is None:
                if has_block:
                    index = self._skip(tokens, index)
                continue
            cost = facts.weight
            named = facts.named
            if not is_composite_type(named):
                if has_block:
                    index = self._skip(tokens, index)
                by_key[key] = max(by_key.get(key, 0), cost)
                continue
            own = (0 if named.name.endswith("Edge") or named.name in VALUE_TYPES
                   else CONNECTION_COST if facts.is_connection else OBJECT_COST)
            # Literal `first` as the full count clamps it; a variable's value is not known here.
            literal = None if first is None else min(max(0, first), self._cost.max_page_size)
            page = None
            if facts.page_default is not None:
                page = literal if first_given else facts.page_default
                page = page or 0
            children = 0
            if has_block:
                child_parent = named if isinstance(named, GraphQLObjectType) else None
                children, index = self._selection(tokens, index, child_parent, page, depth + 1)
            if facts.is_list:
                if name == "edges" and edges is not None:
                    size = edges
                elif facts.sized_by_first:
                    size = (literal or 0) if first_given else facts.list_size
                else:
                    size = facts.list_size
                cost += size * (own + children)
            else:
                cost += own + children
            by_key[key] = max(by_key.get(key, 0), cost)
        return sum(by_key.values()), index + 1
