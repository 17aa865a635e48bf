"""The input bounds walk any document it is handed, even one not validated yet, without failing."""

from __future__ import annotations

import pytest
from graphql import get_operation_ast, parse

from resolvers import build_schema
from transport.input_bounds import InputBounds

SCHEMA = build_schema()._schema


def _check(query: str, variables: dict[str, object] | None = None) -> str | None:
    document = parse(query, max_tokens=100_000)
    operation = get_operation_ast(document)
    assert operation is not None
    error = InputBounds(SCHEMA, cache_size=10).check(query, document, operation, variables)
    return error.message if error is not None else None


@pytest.mark.parametrize(
    "query",
    [
        "{ " + "products(channel: \"web\") { edges { node { skus { product { " * 20 + "id" + " } } } } }" * 20 + " }",
        "{ nope(x: \"%s\") { deeper(y: 1) } }" % ("x" * 1000),
        "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A products(channel: \"web\") { totalCount } }",
        "{ node(id: \"x\") { ... on PlaceOrderInput { channel(x: 1) } ... on NoSuchType { a } } }",
        "{ products(channel: { not: \"a string\" }, first: \"twenty\") { totalCount } }",
    ],
    ids=["deeper than any limit", "unknown fields", "fragments that spread each other", "input and unknown types",
         "values of the wrong shape"],
)
def test_a_document_that_would_not_validate_is_walked_without_failing(query: str) -> None:
    assert _check(query) is None


def test_a_variable_of_the_wrong_shape_is_left_to_coercion() -> None:
    query = "query Q($input: PlaceOrderInput!) { placeOrder(input: $input) { accessToken } }"

    assert _check(query, {"input": ["not", "an", "object"]}) is None
    assert _check(query, {"input": {"couponCode": 12, "lines": "none", "buyer": None}}) is None


def test_a_list_given_as_one_value_is_checked_as_a_list_of_one() -> None:
    query = "subscription S($ids: [ID!]) { stockChanged(channel: \"web\", skuIds: $ids) { skuId } }"

    assert _check(query, {"ids": "i" * 101}) == "skuIds[0]: at most 100 characters"
