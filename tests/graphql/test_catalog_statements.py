"""Nested SKUs, brands, categories and bundle components load in batches, not per object."""

from __future__ import annotations

from typing import Any

import pytest

from tests.graphql.catalog_support import DemoCatalog
from tests.support import GraphQLClient, StatementCounter

DETAIL = """
fragment Detail on Product {
  slug
  brand { code }
  category { code }
  skus {
    code price { amount } stock { available reserved presale }
    product { slug }
    components { quantity sku { code stock { available } } }
  }
}
"""
QUERIES = {
    "BySlug": 'query BySlug($slug: String!) { product(channel: "web", slug: $slug) { ...Detail } }'
    + DETAIL,
    "ById": 'query ById($id: ID!) { product(channel: "web", id: $id) { ...Detail } }' + DETAIL,
    "AsNode": "query AsNode($id: ID!) { node(id: $id) { ...Detail } }" + DETAIL,
}

CATALOG = """
query Catalog($first: Int) {
  products(channel: "web", first: $first) {
    edges { node { slug brand { code } category { code }
      skus { code stock { available } components { quantity sku { code stock { available } } } } } }
  }
}
"""


async def _measure(
    statements: StatementCounter, gql: GraphQLClient, operation: str, variables: dict[str, Any]
) -> tuple[dict[str, Any], int]:
    answer, count = await statements.measure(gql(QUERIES[operation], variables))
    assert "errors" not in answer, answer
    return answer, count


def _variables(operation: str, demo: DemoCatalog, slug: str) -> dict[str, Any]:
    return {"slug": slug} if operation == "BySlug" else {"id": demo.product_id(slug)}


@pytest.mark.parametrize("operation", ["BySlug", "ById", "AsNode"])
async def test_one_product_takes_as_many_statements_with_three_skus_as_with_one(
    gql: GraphQLClient, statements: StatementCounter, demo: DemoCatalog, operation: str
) -> None:
    one, one_count = await _measure(
        statements, gql, operation, _variables(operation, demo, "netease-cloud-music")
    )
    three, three_count = await _measure(
        statements, gql, operation, _variables(operation, demo, "qq-coins")
    )

    field = "node" if operation == "AsNode" else "product"
    assert [len(one["data"][field]["skus"]), len(three["data"][field]["skus"])] == [1, 3]
    assert 0 < one_count == three_count, statements.seen


async def test_a_catalog_page_with_bundles_takes_as_many_statements_for_the_whole_catalog_as_for_eight(
    gql: GraphQLClient, statements: StatementCounter
) -> None:
    small, small_count = await statements.measure(gql(CATALOG, {"first": 8}))
    large, large_count = await statements.measure(gql(CATALOG, {"first": 20}))  # all ten

    assert "errors" not in small and "errors" not in large
    assert [len(small["data"]["products"]["edges"]), len(large["data"]["products"]["edges"])] == [
        8,
        10,
    ]
    assert 0 < small_count == large_count, statements.seen
