"""The floor read from a document's tokens is never above the cost of the parsed document,
so refusing by it refuses only what the full count refuses; for plain documents it is the
full count."""

from __future__ import annotations

import pytest
from graphql import get_operation_ast, parse

from resolvers import build_schema
from transport.cost import QueryCost
from transport.cost_floor import CostFloor

SCHEMA = build_schema()._schema
COST = QueryCost(SCHEMA, default_page_size=20, max_page_size=100)
FLOOR = CostFloor(COST, max_tokens=2000)

AMPLIFIER = "{ " + " ".join(
    f'a{i}: products(channel: "web", first: 100) {{ edges {{ node {{ id name slug description skus {{ id code name kind '
    f'product {{ id name slug skus {{ id code name kind faceValue {{ amount }} }} }} }} }} }} pageInfo {{ hasNextPage endCursor }} }}'
    for i in range(30)
) + " }"


def full(query: str, variables: dict | None = None) -> int:
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    return COST.requested(document, operation, variables)


PLAIN = [
    AMPLIFIER,
    "{ channels { code } }",
    '{ products(channel: "web", first: 25) { edges { node { name skus { code product { skus { code } } } } } } }',
    'query Page { products(channel: "web", first: 500) { edges { node { name } } pageInfo { hasNextPage } } }',
    '# a comment { with braces }\n{ products(channel: "web", first: 3, after: "{x}") { edges { node { name } } } }',
    'query Q($c: String = "}") { products(channel: "web") { edges { node { skus { code } } } } }',
]

# What the floor counts less than execution: fragments, abstract types, directives, variables,
# response keys merged, introspection.
PARTIAL = [
    ('{ products(channel: "web") { edges { node { ...F } } } } fragment F on Product { skus { code } }', None),
    ('{ node(id: "x") { ... on Product { skus { code skus: code } } } }', None),
    ('{ a: products(channel: "web", first: 5) { edges { node { name } } }'
     ' a: products(channel: "web", first: 50) { edges { node { id skus { code } } } } }', None),
    ('query Q($n: Int) { products(channel: "web", first: $n) { edges { node { skus { code } } } } }', {"n": 60}),
    ('query Q($s: Boolean!) { products(channel: "web", first: 9) @skip(if: $s) { edges { node { name } } } }', {"s": False}),
    ('{ __schema { types { name } } channels { code } }', None),
    ('{ products(channel: "web", first: 40) { edges { node { skus { code } } } } } query Other { channels { code } }', None),
]

UNREAD = [
    'mutation { placeOrder(input: {}) { order { id } } }',
    "subscription { stockChanged { available } }",
    "{ products(channel: 'web') { edges } }",
    "{ products { edges { node { name } ",
    "fragment F on Product { name } { products { edges { node { ...F } } } }",
]


@pytest.mark.parametrize("query", PLAIN)
def test_a_plain_document_is_counted_in_full(query: str) -> None:
    assert FLOOR.requested(query) == full(query)


@pytest.mark.parametrize(("query", "variables"), PARTIAL)
def test_what_the_floor_cannot_see_is_counted_as_nothing_never_as_more(query: str, variables: dict | None) -> None:
    try:
        count = full(query, variables)
    except AssertionError:  # several operations: the full count needs operationName
        count = COST.requested(parse(query), get_operation_ast(parse(query), "Other"), variables)
    assert 0 <= FLOOR.requested(query) <= count


@pytest.mark.parametrize("query", UNREAD)
def test_what_it_cannot_read_it_leaves_to_the_parser(query: str) -> None:
    assert FLOOR.requested(query) == 0


def test_more_tokens_than_the_parser_takes_are_left_to_the_parser() -> None:
    assert CostFloor(COST, max_tokens=100).requested(AMPLIFIER) == 0


def test_the_amplification_query_is_over_the_maximum_by_its_floor_alone() -> None:
    assert FLOOR.requested(AMPLIFIER) == full(AMPLIFIER) > 100_000
