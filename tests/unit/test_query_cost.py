"""The cost of an operation, before it runs and after, by Shopify's rules over our schema."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import get_operation_ast, parse

from resolvers import build_schema
from transport.cost import QueryCost

SCHEMA = build_schema()._schema
COST = QueryCost(SCHEMA, default_page_size=20, max_page_size=100)


def requested(query: str, variables: dict[str, Any] | None = None) -> int:
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    return COST.requested(document, operation, variables)


def actual(query: str, data: dict[str, Any]) -> int:
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    return COST.actual(document, operation, data)


@pytest.mark.parametrize(
    ("query", "cost"),
    [
        # Leaves cost nothing; an object costs 1; a plain list multiplies by its declared size.
        ('{ channels { code name } }', 20 * 1),
        ('{ __typename }', 0),
        # A connection costs 2, and its edges multiply by `first`; money and stock are values.
        ('{ products(channel: "web", first: 5) { edges { node { id name } } pageInfo { hasNextPage } } }', 2 + 5 * 1),
        ('{ products(channel: "web", first: 5) { edges { node { skus { price { amount } stock { available } } } } } }',
         2 + 5 * (1 + 5 * 1)),
        # Without `first`, the page the field would serve by default.
        ('{ products(channel: "web") { edges { node { id } } } }', 2 + 20 * 1),
        # A page larger than any field serves counts as the largest: the field names the error.
        ('{ products(channel: "web", first: 1000) { edges { node { id } } } }', 2 + 100 * 1),
        # Nested lists multiply.
        ('{ products(channel: "web", first: 10) { edges { node { skus { product { skus { code } } } } } } }',
         2 + 10 * (1 + 5 * (1 + 1 + 5 * 1))),
        # A mutation's root field costs 10, then its selection as usual.
        ('mutation { cancelOrder(orderId: "T3JkZXI6MQ==") { order { lines { quantity } } userErrors { code } } }',
         10 + 1 + 10 * 1),
        # An expensive resolver pays its weight once.
        ('{ salesSummary(from: "2026-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", bucket: HOUR) { orders revenue { amount } } }',
         20 + 50 * 1),
    ],
)
def test_the_requested_cost_follows_the_rules(query: str, cost: int) -> None:
    assert requested(query) == cost


def test_first_may_come_from_a_variable() -> None:
    query = 'query Q($n: Int) { products(channel: "web", first: $n) { edges { node { id } } } }'
    assert (requested(query, {"n": 3}), requested(query, {"n": None}), requested(query, {})) == (2 + 3, 2 + 20, 2 + 20)


def test_fragments_count_where_they_may_apply_and_a_spread_cycle_counts_once() -> None:
    query = """
    query { node(id: "UHJvZHVjdDox") { ...P ... on Sku { code product { name } } } }
    fragment P on Product { skus { code } }
    """
    # node is an object (1); Product's fragment costs 5 (five SKUs), Sku's 1: the larger applies.
    assert requested(query) == 1 + 5


def test_aliases_each_pay_for_their_own_selection() -> None:
    one = '{ products(channel: "web", first: 100) { edges { node { skus { product { skus { code } } } } } } }'
    thirty = "{ " + " ".join(f"a{i}: " + one[2:-2] for i in range(30)) + " }"
    assert requested(thirty) == 30 * requested(one) > 100_000


def test_the_actual_cost_counts_what_came_back() -> None:
    query = '{ products(channel: "web", first: 50) { edges { node { name skus { code } } } } }'
    data = {"products": {"edges": [
        {"node": {"name": "a", "skus": [{"code": "a1"}, {"code": "a2"}]}},
        {"node": {"name": "b", "skus": []}},
    ]}}
    assert (requested(query), actual(query, data)) == (2 + 50 * (1 + 5), 2 + (1 + 2) + (1 + 0))


def test_a_null_object_costs_only_itself() -> None:
    query = '{ product(channel: "web", slug: "nope") { skus { code } } }'
    assert actual(query, {"product": None}) == 1


def test_fields_under_one_key_are_costed_over_the_union_of_their_selections() -> None:
    split = '{ p: product(channel: "web", slug: "x") { name } p: product(channel: "web", slug: "x") { skus { code } } }'
    assert requested(split) == 1 + 5
    # Different keys run twice, and pay twice.
    twice = '{ a: product(channel: "web", slug: "x") { skus { code } } b: product(channel: "web", slug: "x") { skus { code } } }'
    assert requested(twice) == 2 * (1 + 5)


def test_fragments_spread_many_times_are_costed_once_and_quickly() -> None:
    # Each fragment spreads the next twice: flattened naively, 2**40 selections.
    chain = "\n".join(f"fragment F{i} on Product {{ name ...F{i + 1} ...F{i + 1} }}" for i in range(40))
    query = '{ product(channel: "web", slug: "x") { ...F0 } }\n' + chain + "\nfragment F40 on Product { skus { code } }"
    assert requested(query) == 1 + 5


def test_a_document_nested_past_any_depth_limit_is_costed_without_recursing_into_it() -> None:
    deep = '{ product(channel: "web", slug: "x") { ' + "skus { product { " * 60 + "name" + " } }" * 60 + " } }"
    assert requested(deep) > 0


@pytest.mark.parametrize(
    ("query", "data"),
    [
        ('{ products(channel: "web", first: 50) { edges { node { name skus { code } } } } }',
         {"products": {"edges": [{"node": {"name": "a", "skus": [{"code": "a1"}, {"code": "a2"}]}},
                                 {"node": {"name": "b", "skus": []}}]}}),
        ('{ product(channel: "web", slug: "nope") { skus { code } } }', {"product": None}),
        ('mutation P($i: PlaceOrderInput!) { placeOrder(input: $i) { order { lines { quantity } events { actor } } '
         'userErrors { code } } }',
         {"placeOrder": {"order": {"lines": [{"quantity": 1}, {"quantity": 2}], "events": [{"actor": "a"}]},
                         "userErrors": []}}),
        ('mutation P($i: PlaceOrderInput!) { p: placeOrder(input: $i) { ... on PlaceOrderPayload { order { id } } '
         'userErrors { code } } }', {"p": {"order": None, "userErrors": [{"code": "OUT_OF_STOCK"}]}}),
        ('mutation P($i: PlaceOrderInput!) { placeOrder(input: $i) { userErrors { code } } }', {"placeOrder": None}),
    ],
)
def test_the_actual_cost_worked_out_once_is_the_walk_over_each_answer(query: str, data: dict[str, Any]) -> None:
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    compiled = COST.compiled_actual(document, operation)

    assert compiled is not None
    assert compiled.of(data) == actual(query, data)


def test_an_actual_cost_through_an_interface_is_not_worked_out_beforehand() -> None:
    document = parse('{ node(id: "T3JkZXI6MQ==") { id ... on Order { number } } }')
    operation = get_operation_ast(document)
    assert operation is not None

    assert COST.compiled_actual(document, operation) is None
