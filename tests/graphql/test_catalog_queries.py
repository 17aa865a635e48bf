"""A storefront reads a channel's catalog: pages, nested SKUs, prices and stock."""

from __future__ import annotations

from tests.support import GraphQLClient, StatementCounter

CATALOG = """
query Catalog($channel: String!, $first: Int, $after: String) {
  products(channel: $channel, first: $first, after: $after) {
    edges {
      cursor
      node {
        id name slug
        brand { code name }
        category { code }
        skus {
          id code kind
          price { amount currency }
          faceValue { amount currency }
          stock { available reserved presale }
        }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_catalog_statement_count_does_not_grow_with_page_size(
    gql: GraphQLClient, statements: StatementCounter
) -> None:
    small, small_count = await statements.measure(gql(CATALOG, {"channel": "web", "first": 5}))
    large, large_count = await statements.measure(gql(CATALOG, {"channel": "web", "first": 50}))

    assert "errors" not in small and "errors" not in large
    assert len(small["data"]["products"]["edges"]) == 5
    assert len(large["data"]["products"]["edges"]) == 9
    assert small_count == large_count, statements.seen
