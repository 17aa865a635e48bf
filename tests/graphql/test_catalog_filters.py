"""A shopper narrows the catalog by brand, category, kind of SKU and text."""

from __future__ import annotations

from typing import Any

import pytest

from tests.graphql.catalog_support import DEMO_SLUGS, outcome, slugs
from tests.support import GraphQLClient

FILTERED = """
query Filtered($filter: ProductFilter, $first: Int, $after: String) {
  products(channel: "web", filter: $filter, first: $first, after: $after) {
    totalCount
    edges { node { slug } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def _filtered(gql: GraphQLClient, f: dict[str, Any], **variables: Any) -> dict[str, Any]:
    answer = await gql(FILTERED, {"filter": f, **variables})
    assert "errors" not in answer, answer
    return answer["data"]["products"]


@pytest.mark.parametrize(
    ("f", "expected"),
    [
        ({"brand": "tencent"}, ["qq-coins", "tencent-video-vip", "gamer-gift-pack"]),
        ({"brand": "steam"}, ["steam-wallet", "office-license", "steam-mystery-box"]),
        ({"brand": "nintendo"}, []),
        ({"category": "video-vip"}, ["tencent-video-vip", "iqiyi-vip", "netease-cloud-music"]),
        ({"category": "gift-pack"}, ["gamer-gift-pack", "steam-mystery-box"]),
        ({"kind": "BLIND_BOX"}, ["steam-mystery-box"]),
        ({"kind": "BUNDLE"}, ["gamer-gift-pack"]),
        ({"kind": "SERIAL"}, ["office-license"]),
        (
            {"kind": "DIRECT_RECHARGE"},
            ["tencent-video-vip", "iqiyi-vip", "genshin-crystals", "netease-cloud-music"],
        ),
        ({"kind": "CARD_CODE"}, ["qq-coins", "iqiyi-vip", "netease-one-card", "steam-wallet"]),
        ({"text": "会员"}, ["tencent-video-vip", "iqiyi-vip"]),  # a name, then a description
        ({"text": "钱包充值"}, ["steam-wallet", "steam-mystery-box"]),
        ({"text": "vip"}, ["tencent-video-vip", "netease-cloud-music"]),
        ({"text": "STEAM"}, ["steam-wallet", "steam-mystery-box"]),
        ({"text": "q币"}, ["qq-coins", "gamer-gift-pack"]),
        ({"text": "%"}, []),
        ({"text": "_"}, []),
        ({"text": "Q_"}, []),  # would match "Q币" if "_" were a wildcard
        ({"text": "Q%卡"}, []),  # would match "Q币卡" if "%" were a wildcard
        ({"text": "\\"}, []),
        ({"text": "没有这种商品"}, []),
        ({"text": ""}, DEMO_SLUGS),
        ({"brand": "tencent", "kind": "DIRECT_RECHARGE"}, ["tencent-video-vip"]),
        ({"brand": "netease", "category": "video-vip"}, ["netease-cloud-music"]),
        ({"category": "video-vip", "kind": "CARD_CODE"}, ["iqiyi-vip"]),
        ({"brand": "tencent", "category": "video-vip", "text": "直充"}, ["tencent-video-vip"]),
        ({"brand": "iqiyi", "kind": "SERIAL"}, []),
    ],
    ids=lambda v: repr(v) if isinstance(v, dict) else "",
)
async def test_a_filter_keeps_the_products_matching_every_given_field(
    gql: GraphQLClient, f: dict[str, Any], expected: list[str]
) -> None:
    page = await _filtered(gql, f)

    assert (slugs(page), page["totalCount"], page["pageInfo"]["hasNextPage"]) == (
        expected,
        len(expected),
        False,
    )


async def test_filtered_pages_continue_within_the_filter(gql: GraphQLClient) -> None:
    top_ups = {"kind": "DIRECT_RECHARGE"}

    first = await _filtered(gql, top_ups, first=3)
    rest = await _filtered(gql, top_ups, first=3, after=first["pageInfo"]["endCursor"])

    assert [(slugs(p), p["totalCount"], p["pageInfo"]["hasNextPage"]) for p in (first, rest)] == [
        (["tencent-video-vip", "iqiyi-vip", "genshin-crystals"], 4, True),
        (["netease-cloud-music"], 4, False),
    ]


async def test_text_longer_than_a_hundred_characters_is_bad_user_input(gql: GraphQLClient) -> None:
    assert outcome(await gql(FILTERED, {"filter": {"text": "会" * 101}})) == {
        "data": None,
        "errors": [{"path": ["products"], "code": "BAD_USER_INPUT", "field": "filter.text"}],
    }
