"""Subscribers asking alike share one delivery; each still hears only what its key may see,
and one that stops reading neither holds up the others nor grows the process's memory."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from httpx_ws import WebSocketDisconnect
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from domain.catalog import CodeStatus, SkuKind
from schema.relay import encode_id
from services.core.database import Database
from tests.graphql.catalog_support import DemoCatalog
from tests.graphql.conftest import Keys
from tests.graphql.test_websocket import LEGACY_WS, TRANSPORT_WS, connected, receive
from tests.services import catalog_rows as rows
from tests.support import GraphQLClient
from transport.fanout import Groups
from transport.outlets import SLOW
from transport.websocket import GraphQLWebSocket

STOCK = """
subscription Stock($channel: String!, $skuIds: [ID!]) {
  stockChanged(channel: $channel, skuIds: $skuIds) { skuId channel available }
}
"""
SET_QUOTA = """
mutation Quota($input: SetChannelQuotaInput!) { setChannelQuota(input: $input) { userErrors { code } } }
"""
# About a kilobyte a message: a client that stops reading fills its buffers in a few dozen.
WIDE_STOCK = (
    "subscription Wide($skuIds: [ID!]) { stockChanged(channel: \"web\", skuIds: $skuIds) { available "
    + " ".join(f"t{n}: at" for n in range(25))
    + " } }"
)


def groups_of(app: Any) -> Groups:
    route = next(r for r in app.routes if isinstance(r, WebSocketRoute) and r.path == "/graphql")
    return route.app.schema.groups  # the view's Operations


async def _init(ws: Any, key: str | None) -> None:
    payload = {"authorization": f"Bearer {key}"} if key else {}
    await ws.send_json({"type": "connection_init", "payload": payload})
    assert await receive(ws) == {"type": "connection_ack"}


async def _heard(ws: Any, timeout: float) -> dict[str, Any]:
    """The next message within `timeout`, past graphql-ws keep-alives."""
    while True:
        message = await ws.receive_json(timeout=timeout)
        if message != {"type": "ka"}:
            return message


async def _drain(*sockets: Any) -> None:
    """Past what late changes of a warm-up sent."""
    for ws in sockets:
        with contextlib.suppress(TimeoutError):
            while True:
                await _heard(ws, 0.3)


async def _quota(gql: GraphQLClient, keys: Keys, channel: str, sku: str, quota: int | None) -> None:
    answer = await gql(SET_QUOTA, {"input": {"channel": channel, "skuId": sku, "quota": quota}}, key=keys.admin)
    assert answer["data"]["setChannelQuota"]["userErrors"] == [], answer


async def test_one_document_answers_each_subscriber_for_what_its_key_may_see(
    app: Any, gql: GraphQLClient, keys: Keys, demo: DemoCatalog
) -> None:
    sku = demo.sku_id("TXV-SEASON")
    async with (
        connected(app, TRANSPORT_WS) as partner,
        connected(app, TRANSPORT_WS) as operator,
        connected(app, LEGACY_WS) as storefront,
        connected(app, TRANSPORT_WS) as intruder,
    ):
        for ws, key in ((partner, keys.taobao), (operator, keys.admin), (storefront, keys.web), (intruder, keys.web)):
            await _init(ws, key)
        # The same document for all; the partner and the operator even send the same variables.
        taobao = {"query": STOCK, "variables": {"channel": "taobao", "skuIds": [sku]}}
        await partner.send_json({"id": "p", "type": "subscribe", "payload": taobao})
        await operator.send_json({"id": "o", "type": "subscribe", "payload": taobao})
        await storefront.send_json({"id": "w", "type": "start", "payload": {**taobao, "variables": {"channel": "web", "skuIds": [sku]}}})
        await intruder.send_json({"id": "i", "type": "subscribe", "payload": taobao})

        refused = await receive(intruder)
        assert [e["extensions"]["code"] for e in refused["payload"]["errors"]] == ["FORBIDDEN"]
        assert await receive(intruder) == {"id": "i", "type": "complete"}
        first: dict[str, dict[str, Any]] = {}
        for _ in range(20):  # the subscriptions are live a moment after `subscribe`
            await _quota(gql, keys, "taobao", sku, 150)
            for name, ws in (("p", partner), ("o", operator), ("w", storefront)):
                if name not in first:
                    with contextlib.suppress(TimeoutError):
                        first[name] = await _heard(ws, 0.5)
            if len(first) == 3:
                break
        web = first["w"]["payload"]["data"]["stockChanged"]
        await _drain(partner, operator, storefront)
        # Partner and operator see alike, yet are told apart: three groups, one member each.
        assert len(groups_of(app)) == 3 and groups_of(app).members() == 3

        await _quota(gql, keys, "taobao", sku, 120)

        assert await receive(partner) == {"id": "p", "type": "next", "payload": {"data": {"stockChanged": {"skuId": sku, "channel": "taobao", "available": 120}}}}
        assert await receive(operator) == {"id": "o", "type": "next", "payload": {"data": {"stockChanged": {"skuId": sku, "channel": "taobao", "available": 120}}}}
        assert await receive(storefront) == {"type": "data", "id": "w", "payload": {"data": {"stockChanged": {"skuId": sku, "channel": "web", "available": web["available"]}}}}
        assert web["channel"] == "web" and web["available"] != 120
        with pytest.raises(TimeoutError):
            await _heard(intruder, 0.3)

        await partner.send_json({"id": "p", "type": "complete"})
        await _quota(gql, keys, "taobao", sku, None)
        assert (await receive(operator))["payload"]["data"]["stockChanged"]["available"] == 200
        with pytest.raises(TimeoutError):
            await _heard(partner, 0.3)
    await asyncio.sleep(0.1)
    assert len(groups_of(app)) == 0


async def test_subscribers_asking_alike_share_one_group(app: Any, gql: GraphQLClient, keys: Keys, demo: DemoCatalog) -> None:
    sku = demo.sku_id("IQY-YEAR")
    web = {"query": STOCK, "variables": {"channel": "web", "skuIds": [sku]}}
    async with connected(app, TRANSPORT_WS) as one, connected(app, TRANSPORT_WS) as other:
        for ws, name in ((one, "a"), (other, "b")):
            await _init(ws, None)
            await ws.send_json({"id": name, "type": "subscribe", "payload": web})
        heard: dict[str, dict[str, Any]] = {}
        for turn in range(20):
            await _quota(gql, keys, "web", sku, 90 + turn % 2)
            for name, ws in (("a", one), ("b", other)):
                with contextlib.suppress(TimeoutError):
                    heard[name] = await _heard(ws, 0.5)
            if len(heard) == 2 and heard["a"]["payload"] == heard["b"]["payload"]:
                break
        assert len(groups_of(app)) == 1 and groups_of(app).members() == 2
        assert heard["a"]["id"] == "a" and heard["b"]["id"] == "b"
        assert heard["a"]["payload"] == heard["b"]["payload"]
    await _quota(gql, keys, "web", sku, None)


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """The app behind a real uvicorn server in this process, whose sockets have small send buffers."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # accepted sockets inherit it
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}/graphql"
    finally:
        server.should_exit = True
        await serving
        listener.close()


async def _subscribed(url: str, operation_id: str, sku: str, *, reads: bool) -> ClientConnection:
    sock = socket.socket()
    if not reads:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(url.split(":")[2].split("/")[0])))
    sock.setblocking(False)
    ws = await connect(url, sock=sock, subprotocols=[TRANSPORT_WS], max_queue=1 if not reads else 16)  # type: ignore[list-item]
    await ws.send('{"type":"connection_init","payload":{}}')
    assert await ws.recv() == '{"type":"connection_ack"}'
    await ws.send(f'{{"id":"{operation_id}","type":"subscribe","payload":{{"query":"{WIDE_STOCK.replace(chr(34), chr(92) + chr(34))}","variables":{{"skuIds":["{sku}"]}}}}}}')
    return ws


async def _hears(ws: ClientConnection, quota: int, earlier: set[int]) -> None:
    """The message of the change to `quota` arrives within a second. Before it may come the
    last of an earlier change (the feed reads the figures after a burst once, and may read a
    change before its own event arrives); nothing else."""
    deadline = asyncio.get_running_loop().time() + 1.0
    while True:
        message = await asyncio.wait_for(ws.recv(), max(deadline - asyncio.get_running_loop().time(), 0.01))
        prefix = '{"id":"fast","type":"next","payload":{"data":{"stockChanged":{"available":'
        assert isinstance(message, str) and message.startswith(prefix), message  # the bytes strawberry would send
        available = int(message[len(prefix):].split(",", 1)[0])
        if available == quota:
            assert message[len(prefix):].startswith(f'{quota},"t0":'), message
            return
        assert available in earlier, message


async def test_a_subscriber_that_stops_reading_holds_up_no_one_and_is_closed(
    app: Any, gql: GraphQLClient, keys: Keys, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(GraphQLWebSocket, "max_unsent_bytes", 16 * 1024)
    # A SKU of its own, with more codes than any quota below (and listed nowhere): what the
    # channel may sell is the quota, whatever other tests of the session sold of the demo's SKUs.
    async with db.sessions() as session, session.begin():
        brand = await rows.brand(session, rows.unique("fanout-brand"))
        category = await rows.category(session, rows.unique("fanout-category"))
        product = await rows.product(session, brand=brand, category=category, name="慢读者测试商品", listed=False)
        coins = await rows.sku(session, product, SkuKind.CARD_CODE)
        rows.codes(session, coins, CodeStatus.AVAILABLE, 50)
    sku = encode_id("Sku", coins.id)
    groups = groups_of(app)
    async with served(app) as url:
        fast = await _subscribed(url, "fast", sku, reads=True)
        slow = await _subscribed(url, "slow", sku, reads=False)
        try:
            for turn in range(20):
                await _quota(gql, keys, "web", sku, 10 + turn % 2)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(fast.recv(), 0.5)
                    break
            with contextlib.suppress(TimeoutError):  # what a late change of the warm-up sent
                while True:
                    await asyncio.wait_for(fast.recv(), 0.3)
            assert groups.members() == 2
            # The slow one never reads: its buffers fill and it is ended; the fast one hears
            # every change meanwhile, each within a second.
            earlier = {10, 11}  # a warm-up change heard late
            for turn in range(200):
                quota = 12 + turn % 2
                await _quota(gql, keys, "web", sku, quota)
                await _hears(fast, quota, earlier)
                earlier = {quota}
                if groups.members() == 1:
                    break
            assert groups.members() == 1, "the slow subscriber was never closed"
            await _quota(gql, keys, "web", sku, 9)
            await _hears(fast, 9, earlier)

            with pytest.raises(ConnectionClosed) as closing:
                while True:
                    await asyncio.wait_for(slow.recv(), 5.0)
            assert closing.value.rcvd is not None and closing.value.rcvd.code == SLOW
        finally:
            await fast.close()
            await slow.close()
            await _quota(gql, keys, "web", sku, None)


CREATE = """
mutation Create($input: CreateApiKeyInput!) { createApiKey(input: $input) { apiKey { id } secret userErrors { code } } }
"""
REVOKE = "mutation Revoke($id: ID!) { revokeApiKey(id: $id) { userErrors { code } } }"


async def test_a_revoked_key_closes_its_socket_while_its_group_goes_on(
    app: Any, gql: GraphQLClient, keys: Keys, demo: DemoCatalog
) -> None:
    sku = demo.sku_id("TXV-MONTH")
    created = (await gql(CREATE, {"input": {"role": "PARTNER", "channel": "taobao", "name": "grouped"}}, key=keys.admin))["data"]["createApiKey"]
    taobao = {"query": STOCK, "variables": {"channel": "taobao", "skuIds": [sku]}}
    async with connected(app, TRANSPORT_WS) as revoked, connected(app, TRANSPORT_WS) as kept:
        for ws, key in ((revoked, created["secret"]), (kept, keys.taobao)):
            await _init(ws, key)
            await ws.send_json({"id": "s", "type": "subscribe", "payload": taobao})
        heard: set[int] = set()
        for turn in range(20):
            await _quota(gql, keys, "taobao", sku, 30 + turn % 2)
            for index, ws in enumerate((revoked, kept)):
                with contextlib.suppress(TimeoutError):
                    await _heard(ws, 0.5)
                    heard.add(index)
            if heard == {0, 1}:
                break
        await _drain(revoked, kept)
        # Two keys of one channel see alike: one group.
        assert len(groups_of(app)) == 1 and groups_of(app).members() == 2

        assert (await gql(REVOKE, {"id": created["apiKey"]["id"]}, key=keys.admin))["data"]["revokeApiKey"]["userErrors"] == []

        with pytest.raises(WebSocketDisconnect) as closing:
            while True:
                await revoked.receive_json(timeout=8)
        assert closing.value.code == 4403
        await _quota(gql, keys, "taobao", sku, 25)
        assert (await receive(kept))["payload"]["data"]["stockChanged"]["available"] == 25
        assert groups_of(app).members() == 1
    await _quota(gql, keys, "taobao", sku, None)


async def test_a_subscription_id_stays_taken_until_its_client_completes_it(
    app: Any, gql: GraphQLClient, keys: Keys, demo: DemoCatalog
) -> None:
    web = {"query": STOCK, "variables": {"channel": "web", "skuIds": [demo.sku_id("NE-15")]}}
    async with connected(app, TRANSPORT_WS) as ws:
        await _init(ws, None)
        await ws.send_json({"id": "s", "type": "subscribe", "payload": web})
        for _ in range(50):
            if groups_of(app).members() == 1:
                break
            await asyncio.sleep(0.05)
        await ws.send_json({"id": "s", "type": "complete"})
        await ws.send_json({"id": "s", "type": "subscribe", "payload": web})  # free again
        await ws.send_json({"id": "s", "type": "subscribe", "payload": web})

        with pytest.raises(WebSocketDisconnect) as closing:
            await ws.receive_json(timeout=5)
        assert (closing.value.code, closing.value.reason) == (4409, "Subscriber for s already exists")
