"""Which channels a caller sees, and whose catalogs an anonymous caller may read."""

from __future__ import annotations

import pytest

from tests.graphql.catalog_support import outcome
from tests.support import GraphQLClient

CHANNELS = "{ channels { code name kind currency public active commissionRate } }"

CATALOG = """
query Catalog($channel: String!) { products(channel: $channel, first: 1) { totalCount } }
"""


async def test_anonymous_callers_see_the_public_storefronts_without_commission(
    gql: GraphQLClient,
) -> None:
    storefront = {"currency": "CNY", "public": True, "active": True, "commissionRate": None}

    assert await gql(CHANNELS) == {
        "data": {
            "channels": [
                {"code": "web", "name": "Quanyi 官网", "kind": "OWN_SITE", **storefront},
                {"code": "mini", "name": "微信小程序", "kind": "MINI_PROGRAM", **storefront},
                {"code": "h5", "name": "H5 商城", "kind": "H5", **storefront},
            ]
        }
    }


@pytest.mark.parametrize("channel", ["web", "mini", "h5"])
async def test_every_public_storefront_shows_the_demo_catalog(
    gql: GraphQLClient, channel: str
) -> None:
    assert await gql(CATALOG, {"channel": channel}) == {"data": {"products": {"totalCount": 10}}}


@pytest.mark.parametrize("channel", ["taobao", "b2b-demo"])
async def test_a_partner_channels_catalog_is_forbidden_to_anonymous_callers(
    gql: GraphQLClient, channel: str
) -> None:
    assert outcome(await gql(CATALOG, {"channel": channel})) == {
        "data": None,
        "errors": [{"path": ["products"], "code": "FORBIDDEN", "field": "channel"}],
    }


@pytest.mark.parametrize("channel", ["jd", "", "WEB"])
async def test_an_unknown_channel_is_bad_user_input(gql: GraphQLClient, channel: str) -> None:
    assert outcome(await gql(CATALOG, {"channel": channel})) == {
        "data": None,
        "errors": [{"path": ["products"], "code": "BAD_USER_INPUT", "field": "channel"}],
    }
