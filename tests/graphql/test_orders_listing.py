"""Operators and partners page through orders; storefronts and guests cannot list them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.shop import Shop, open_shop

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number createdAt } accessToken userErrors { code } }
}
"""
CANCEL = """
mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { userErrors { code } } }
"""
ORDERS = """
query Orders($channel: String, $status: OrderStatus, $from: DateTime, $to: DateTime, $first: Int, $after: String) {
  orders(channel: $channel, status: $status, placedFrom: $from, placedTo: $to, first: $first, after: $after) {
    edges { cursor node { number channel status } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


@dataclass(frozen=True)
class Placed:
    id: str
    number: str
    created_at: str
    token: str


@dataclass(frozen=True)
class History:
    """Orders placed in this order: three on mini (the second cancelled), two on taobao."""

    mini: list[Placed]
    taobao: list[Placed]


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("orders-listing")) as opened:
        yield opened


@pytest.fixture(scope="module")
async def history(shop: Shop) -> History:
    sku = await shop.shelf.card_codes(10)

    async def place(channel: str, key: str | None) -> Placed:
        answer = await shop.gql(PLACE, {"input": {
            "channel": channel, "idempotencyKey": uuid.uuid4().hex,
            "lines": [{"skuId": sku.gid, "quantity": 1}], "buyer": {"email": "list@example.com"},
        }}, key=key)
        payload = answer["data"]["placeOrder"]
        assert payload["userErrors"] == []
        return Placed(payload["order"]["id"], payload["order"]["number"], payload["order"]["createdAt"], payload["accessToken"])

    mini: list[Placed] = []
    taobao: list[Placed] = []
    for channel, key, into in (("mini", None, mini), ("taobao", shop.keys.taobao, taobao)) * 3:
        if channel == "mini" or len(taobao) < 2:
            into.append(await place(channel, key))
    cancelled = await shop.gql(CANCEL, {"id": mini[1].id}, key=mini[1].token)
    assert cancelled["data"]["cancelOrder"]["userErrors"] == []
    return History(mini, taobao)


def node(placed: Placed, channel: str, status: str = "PENDING_PAYMENT") -> dict[str, str]:
    return {"number": placed.number, "channel": channel, "status": status}


def nodes(answer: dict[str, Any]) -> list[dict[str, str]]:
    return [edge["node"] for edge in answer["data"]["orders"]["edges"]]


def codes(answer: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in answer.get("errors", [])]


async def test_an_operator_lists_every_order_newest_first(shop: Shop, history: History) -> None:
    answer = await shop.gql(ORDERS, {}, key=shop.keys.admin)

    m, t = history.mini, history.taobao
    assert nodes(answer) == [
        node(m[2], "mini"), node(t[1], "taobao"), node(m[1], "mini", "CANCELLED"), node(t[0], "taobao"), node(m[0], "mini"),
    ]


async def test_an_operator_pages_through_a_channel(shop: Shop, history: History) -> None:
    first = await shop.gql(ORDERS, {"channel": "mini", "first": 2}, key=shop.keys.admin)
    after = first["data"]["orders"]["pageInfo"]["endCursor"]
    second = await shop.gql(ORDERS, {"channel": "mini", "first": 2, "after": after}, key=shop.keys.admin)

    m = history.mini
    edges = first["data"]["orders"]["edges"]
    assert first["data"]["orders"] == {
        "edges": [{"cursor": edges[0]["cursor"], "node": node(m[2], "mini")},
                  {"cursor": edges[1]["cursor"], "node": node(m[1], "mini", "CANCELLED")}],
        "pageInfo": {"hasNextPage": True, "hasPreviousPage": False, "startCursor": edges[0]["cursor"], "endCursor": edges[1]["cursor"]},
    }
    cursor = second["data"]["orders"]["edges"][0]["cursor"]
    assert second["data"]["orders"] == {
        "edges": [{"cursor": cursor, "node": node(m[0], "mini")}],
        "pageInfo": {"hasNextPage": False, "hasPreviousPage": True, "startCursor": cursor, "endCursor": cursor},
    }


async def test_an_operator_filters_by_status_and_placement_time(shop: Shop, history: History) -> None:
    m = history.mini
    cancelled = await shop.gql(ORDERS, {"status": "CANCELLED"}, key=shop.keys.admin)
    from_second = await shop.gql(ORDERS, {"channel": "mini", "from": m[1].created_at}, key=shop.keys.admin)
    before_second = await shop.gql(ORDERS, {"channel": "mini", "to": m[1].created_at}, key=shop.keys.admin)
    pending_window = await shop.gql(
        ORDERS, {"channel": "mini", "status": "PENDING_PAYMENT", "from": m[0].created_at, "to": m[2].created_at},
        key=shop.keys.admin,
    )

    assert nodes(cancelled) == [node(m[1], "mini", "CANCELLED")]
    assert nodes(from_second) == [node(m[2], "mini"), node(m[1], "mini", "CANCELLED")]
    assert nodes(before_second) == [node(m[0], "mini")]
    assert nodes(pending_window) == [node(m[0], "mini")]


async def test_a_partner_lists_its_own_channel_only(shop: Shop, history: History) -> None:
    own = await shop.gql(ORDERS, {}, key=shop.keys.taobao)
    named = await shop.gql(ORDERS, {"channel": "taobao"}, key=shop.keys.taobao)
    other = await shop.gql(ORDERS, {"channel": "mini"}, key=shop.keys.taobao)
    b2b = await shop.gql(ORDERS, {}, key=shop.keys.b2b)

    t = history.taobao
    assert nodes(own) == nodes(named) == [node(t[1], "taobao"), node(t[0], "taobao")]
    assert (other["data"], codes(other)) == (None, ["FORBIDDEN"])
    assert nodes(b2b) == []


@pytest.mark.parametrize(("who", "code"), [("anonymous", "UNAUTHENTICATED"), ("storefront key", "FORBIDDEN"),
                                            ("buyer token", "UNAUTHENTICATED")])
async def test_storefronts_and_buyers_cannot_list_orders(shop: Shop, history: History, who: str, code: str) -> None:
    key = {"anonymous": None, "storefront key": shop.keys.web, "buyer token": history.mini[0].token}[who]

    answer = await shop.gql(ORDERS, {"channel": "mini"}, key=key)

    assert (answer["data"], codes(answer)) == (None, [code])


@pytest.mark.parametrize("variables", [
    {"channel": "nowhere"}, {"first": 101}, {"first": -1}, {"after": "bm90LWEtY3Vyc29y"}, {"from": "2026-01-01T00:00:00"},
])
async def test_bad_list_arguments_are_the_callers_error(shop: Shop, history: History, variables: dict[str, Any]) -> None:
    answer = await shop.gql(ORDERS, variables, key=shop.keys.admin)

    assert (answer.get("data"), codes(answer)) == (None, ["BAD_USER_INPUT"])
