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
    gql: GraphQLClient, statements: StatementCounter, app: object
) -> None:
    reference = app.state.catalog_reference  # type: ignore[attr-defined]
    reference.forget()
    small, small_cold = await statements.measure(gql(CATALOG, {"channel": "web", "first": 5}))
    reference.forget()
    large, large_cold = await statements.measure(gql(CATALOG, {"channel": "web", "first": 50}))
    _, small_warm = await statements.measure(gql(CATALOG, {"channel": "web", "first": 5}))
    _, large_warm = await statements.measure(gql(CATALOG, {"channel": "web", "first": 50}))

    assert "errors" not in small and "errors" not in large
    assert len(small["data"]["products"]["edges"]) == 5
    assert len(large["data"]["products"]["edges"]) == 10
    # Read cold: the channel, the page, brands, categories, SKUs, bundle parts and components,
    # stock, channel prices and tiers, once each whatever the page holds.
    assert small_cold <= large_cold <= 10, statements.seen
    # Then the reference data is kept: the page and its stock.
    assert small_warm == large_warm == 2, statements.seen
