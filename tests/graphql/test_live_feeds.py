"""Subscribers see a channel's stock move, and only what their key may see."""

from __future__ import annotations

from tests.graphql.catalog_support import DemoCatalog
from tests.graphql.conftest import Keys
from tests.graphql.test_websocket import TRANSPORT_WS, connected, receive
from tests.support import GraphQLClient

STOCK = """
subscription Stock($channel: String!, $skuIds: [ID!]) {
  stockChanged(channel: $channel, skuIds: $skuIds) { skuId channel available }
}
"""
ORDER_STATUS = "subscription Follow($id: ID!) { orderStatusChanged(orderId: $id) { status } }"
SET_QUOTA = """
mutation Quota($input: SetChannelQuotaInput!) { setChannelQuota(input: $input) { userErrors { code } } }
"""


async def _open(ws, key: str | None) -> None:
    payload = {"authorization": f"Bearer {key}"} if key else {}
    await ws.send_json({"type": "connection_init", "payload": payload})
    assert await receive(ws) == {"type": "connection_ack"}


async def test_a_partner_sees_its_channels_stock_change(app: object, gql: GraphQLClient, keys: Keys, demo: DemoCatalog) -> None:
    sku = demo.sku_id("TXV-SEASON")
    async with connected(app, TRANSPORT_WS) as ws:
        await _open(ws, keys.taobao)
        await ws.send_json({"id": "s", "type": "subscribe", "payload": {"query": STOCK, "variables": {"channel": "taobao", "skuIds": [sku]}}})
        # The feed is live a moment after `subscribe`: change stock until the first change arrives.
        first = None
        for _ in range(20):
            await gql(SET_QUOTA, {"input": {"channel": "taobao", "skuId": sku, "quota": 150}}, key=keys.admin)
            try:
                first = await ws.receive_json(timeout=0.5)
                break
            except TimeoutError:
                continue
        assert first == {"id": "s", "type": "next", "payload": {"data": {"stockChanged": {"skuId": sku, "channel": "taobao", "available": 150}}}}
        answer = await gql(SET_QUOTA, {"input": {"channel": "taobao", "skuId": sku, "quota": 120}}, key=keys.admin)
        assert answer["data"]["setChannelQuota"]["userErrors"] == []
        assert await receive(ws) == {"id": "s", "type": "next", "payload": {"data": {"stockChanged": {"skuId": sku, "channel": "taobao", "available": 120}}}}
        await gql(SET_QUOTA, {"input": {"channel": "taobao", "skuId": sku, "quota": None}}, key=keys.admin)
        assert (await receive(ws))["payload"]["data"]["stockChanged"]["available"] == 200


async def test_a_partner_cannot_follow_another_partner_channels_stock(app: object, keys: Keys) -> None:
    async with connected(app, TRANSPORT_WS) as ws:
        await _open(ws, keys.taobao)
        await ws.send_json({"id": "s", "type": "subscribe", "payload": {"query": STOCK, "variables": {"channel": "b2b-demo"}}})
        message = await receive(ws)
        codes = [e["extensions"]["code"] for e in message["payload"]["errors"]]
        assert message["type"] == "next" and codes == ["FORBIDDEN"]


async def test_anonymous_callers_cannot_follow_a_partner_channels_stock(app: object) -> None:
    async with connected(app, TRANSPORT_WS) as ws:
        await _open(ws, None)
        await ws.send_json({"id": "s", "type": "subscribe", "payload": {"query": STOCK, "variables": {"channel": "taobao"}}})
        message = await receive(ws)
        assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["FORBIDDEN"]


PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number } accessToken userErrors { code } }
}
"""
CANCEL = "mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }"


async def _place(gql: GraphQLClient, demo: DemoCatalog, key: str) -> dict:
    answer = await gql(PLACE, {"input": {
        "channel": "web", "idempotencyKey": key,
        "lines": [{"skuId": demo.sku_id("IQY-YEAR"), "quantity": 1}],
        "buyer": {"phone": "13800138000", "rechargeAccount": "iqiyi-user-1"},
    }})
    assert answer["data"]["placeOrder"]["userErrors"] == [], answer
    return answer["data"]["placeOrder"]


async def test_the_buyer_follows_its_order_with_the_access_token(app: object, gql: GraphQLClient, demo: DemoCatalog) -> None:
    placed = await _place(gql, demo, "live-feed-order-1")
    async with connected(app, TRANSPORT_WS) as ws:
        await _open(ws, placed["accessToken"])
        await ws.send_json({"id": "o", "type": "subscribe", "payload": {"query": ORDER_STATUS, "variables": {"id": placed["order"]["id"]}}})
        await _settle(ws)
        cancelled = await gql(CANCEL, {"id": placed["order"]["id"]}, key=placed["accessToken"])
        assert cancelled["data"]["cancelOrder"] == {"order": {"status": "CANCELLED"}, "userErrors": []}

        assert await receive(ws) == {"id": "o", "type": "next", "payload": {"data": {"orderStatusChanged": {"status": "CANCELLED"}}}}


async def test_another_buyer_cannot_follow_the_order(app: object, gql: GraphQLClient, demo: DemoCatalog, keys: Keys) -> None:
    mine = await _place(gql, demo, "live-feed-order-2")
    theirs = await _place(gql, demo, "live-feed-order-3")
    for key in (theirs["accessToken"], keys.taobao, None):
        async with connected(app, TRANSPORT_WS) as ws:
            await _open(ws, key)
            await ws.send_json({"id": "o", "type": "subscribe", "payload": {"query": ORDER_STATUS, "variables": {"id": mine["order"]["id"]}}})
            message = await receive(ws)
            assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["FORBIDDEN"]
    for placed in (mine, theirs):
        await gql(CANCEL, {"id": placed["order"]["id"]}, key=placed["accessToken"])


async def _settle(ws) -> None:
    """Give the server a moment to open the feed: nothing arrives before a change."""
    try:
        message = await ws.receive_json(timeout=0.5)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected message before any change: {message}")
