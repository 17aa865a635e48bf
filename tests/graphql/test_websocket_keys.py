"""A WebSocket connection authenticates with the key in its connection_init payload."""

from __future__ import annotations

from tests.graphql.conftest import Keys
from tests.graphql.test_websocket import TRANSPORT_WS, closed_with, connected, receive

TAOBAO_CATALOG = '{ products(channel: "taobao", first: 1) { edges { node { slug } } } }'


async def test_a_partner_key_in_connection_init_opens_its_channel(app: object, keys: Keys) -> None:
    async with connected(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {keys.taobao}"}})
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": TAOBAO_CATALOG}})

        assert await receive(ws) == {
            "id": "1", "type": "next",
            "payload": {"data": {"products": {"edges": [{"node": {"slug": "qq-coins"}}]}}},
        }


async def test_without_a_key_the_partner_channel_stays_closed(app: object) -> None:
    async with connected(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": TAOBAO_CATALOG}})

        answer = await receive(ws)
        assert answer["payload"]["data"] is None
        assert answer["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_bad_key_in_connection_init_closes_with_4403(app: object, keys: Keys) -> None:
    async with connected(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"authorization": f"Bearer {keys.taobao}x"}})
        code, _ = await closed_with(ws)
        assert code == 4403


NE50_PRICE = '{ product(channel: "h5", slug: "netease-one-card") { skus { code price { amount } } } }'
SET_PRICE = """
mutation Set($input: SetChannelPriceInput!) { setChannelPrice(input: $input) { userErrors { code } } }
"""


async def test_a_long_lived_connection_reads_fresh_data_in_each_operation(
    app: object, gql: object, keys: Keys, demo: object
) -> None:
    async with connected(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert await receive(ws) == {"type": "connection_ack"}

        async def ne50() -> str:
            await ws.send_json({"id": "q", "type": "subscribe", "payload": {"query": NE50_PRICE}})
            answer = await receive(ws)
            assert await receive(ws) == {"id": "q", "type": "complete"}
            return next(s["price"]["amount"] for s in answer["payload"]["data"]["product"]["skus"] if s["code"] == "NE-50")

        before = await ne50()
        await gql(SET_PRICE, {"input": {"channel": "h5", "skuId": demo.sku_id("NE-50"), "amount": "48.80"}}, key=keys.admin)  # type: ignore[operator, attr-defined]
        after = await ne50()

    assert (before, after) == ("49.30", "48.80")
