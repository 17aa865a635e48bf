"""A storefront pages through a channel's catalog with `first` and `after`."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from schema.relay import encode_cursor
from tests.graphql.catalog_support import DEMO_SLUGS, DemoCatalog, outcome, slugs
from tests.support import GraphQLClient

PAGE = """
query Page($channel: String!, $first: Int, $after: String) {
  products(channel: $channel, first: $first, after: $after) {
    totalCount
    edges { cursor node { slug } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def _page(gql: GraphQLClient, **variables: Any) -> dict[str, Any]:
    answer = await gql(PAGE, {"channel": "web", **variables})
    assert "errors" not in answer, answer
    return answer["data"]["products"]


async def test_pages_of_two_walk_all_ten_demo_products_without_repeats_or_gaps(
    gql: GraphQLClient,
) -> None:
    pages, after = [], None
    while True:
        page = await _page(gql, first=2, after=after)
        pages.append(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert len(pages) < 10, "the walk does not end"

    assert [slugs(p) for p in pages] == [DEMO_SLUGS[i : i + 2] for i in range(0, 10, 2)]
    assert [
        (p["pageInfo"]["hasPreviousPage"], p["pageInfo"]["hasNextPage"], p["totalCount"])
        for p in pages
    ] == [(False, True, 10), (True, True, 10), (True, True, 10), (True, True, 10), (True, False, 10)]
    for page in pages:
        cursors = [edge["cursor"] for edge in page["edges"]]
        assert (page["pageInfo"]["startCursor"], page["pageInfo"]["endCursor"]) == (
            cursors[0],
            cursors[-1],
        )


async def test_a_whole_catalog_fits_on_a_page_of_a_hundred(gql: GraphQLClient) -> None:
    page = await _page(gql, first=100)

    assert (slugs(page), page["pageInfo"]["hasNextPage"], page["pageInfo"]["hasPreviousPage"]) == (
        DEMO_SLUGS,
        False,
        False,
    )


async def test_without_first_a_page_holds_twenty(gql: GraphQLClient) -> None:
    assert slugs(await _page(gql)) == DEMO_SLUGS


async def test_a_page_of_zero_has_no_edges_and_says_more_follow(gql: GraphQLClient) -> None:
    assert await _page(gql, first=0) == {
        "totalCount": 10,
        "edges": [],
        "pageInfo": {
            "hasNextPage": True,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }


async def test_after_the_last_product_the_page_is_empty(gql: GraphQLClient) -> None:
    last = (await _page(gql, first=10))["pageInfo"]["endCursor"]

    page = await _page(gql, first=2, after=last)

    assert (page["edges"], page["pageInfo"]["hasNextPage"]) == ([], False)


async def test_a_cursor_continues_right_after_its_product(
    gql: GraphQLClient, demo: DemoCatalog
) -> None:
    after_steam = encode_cursor("Product", demo.products["steam-wallet"])

    page = await _page(gql, first=2, after=after_steam)

    assert slugs(page) == ["office-license", "gamer-gift-pack"]


@pytest.mark.parametrize("first", [101, 1000, -1])
async def test_a_page_size_out_of_range_is_bad_user_input(gql: GraphQLClient, first: int) -> None:
    assert outcome(await gql(PAGE, {"channel": "web", "first": first})) == {
        "data": None,
        "errors": [{"path": ["products"], "code": "BAD_USER_INPUT", "field": "first"}],
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "after",
    [
        "garbage",
        "",
        _b64("ProductCursor:abc"),
        _b64("ProductCursor:-1"),
        _b64("ProductCursor:0003"),
        _b64("OrderCursor:3"),  # a cursor of another list
        _b64("Product:3"),  # a product's ID is not a cursor
        _b64(f"ProductCursor:{2**40}"),
    ],
)
async def test_a_malformed_after_cursor_is_bad_user_input(gql: GraphQLClient, after: str) -> None:
    assert outcome(await gql(PAGE, {"channel": "web", "after": after})) == {
        "data": None,
        "errors": [{"path": ["products"], "code": "BAD_USER_INPUT", "field": "after"}],
    }
