"""Orders held for review: an operator approves or rejects them; stock goes back once.

The demo's starting rules hold orders from virtual-operator numbers (170, 171, ...) for review.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from broker import MemoryBroker
from models import Order
from services.orders.expiry import expire_once
from tests.e2e.shop import Shop, StockedSku, open_shop, order_input
from tests.graphql.catalog_support import DemoCatalog
from tests.graphql.conftest import Keys
from tests.graphql.test_live_feeds import ORDER_STATUS, _open, _settle
from tests.graphql.test_websocket import TRANSPORT_WS, connected, receive
from tests.support import GraphQLClient

VIRTUAL = {"phone": "17012345678"}
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number status expiresAt } accessToken userErrors { code } }
}
"""
REVIEW = """
mutation Review($id: ID!, $decision: RiskDecision!, $note: String) {
  reviewOrder(orderId: $id, decision: $decision, note: $note) {
    order { status expiresAt events { actor fromStatus toStatus reason } }
    userErrors { field code }
  }
}
"""
PAY = """
mutation Pay($id: ID!, $reference: String! = "pay-1") {
  payOrder(orderId: $id, paymentReference: $reference) { order { status } userErrors { code } }
}
"""
ORDER = """
query Order($id: ID!) {
  order(id: $id) { status riskVerdict { id decision score reasons { rule observed threshold } } }
}
"""
VERDICTS = """
query Verdicts($channel: String) { riskVerdicts(channel: $channel) { edges { node { channel decision order { number } } } } }
"""
CANCEL = "mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { userErrors { code } } }"
NODE = "query Node($id: ID!) { node(id: $id) { ... on RiskVerdict { decision channel } } }"
FACTS = "query { riskVerdicts(first: 1) { edges { node { facts } } } }"


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("risk-review")) as opened:
        yield opened


async def held(shop: Shop, sku: StockedSku, *, channel: str = "web", key: str | None = None) -> dict[str, Any]:
    answer = await shop.gql(PLACE, {"input": order_input((sku, 1), channel=channel, buyer=VIRTUAL)}, key=key)
    placed = answer["data"]["placeOrder"]
    assert placed["order"]["status"] == "REVIEW", answer
    return placed


async def review(shop: Shop, order: dict[str, Any], decision: str, note: str | None = None) -> dict[str, Any]:
    answer = await shop.gql(REVIEW, {"id": order["order"]["id"], "decision": decision, "note": note}, key=shop.keys.admin)
    return answer["data"]["reviewOrder"]


HELD = [
    {"actor": "anonymous", "fromStatus": None, "toStatus": "PENDING_RISK", "reason": "placed"},
    {"actor": "system", "fromStatus": "PENDING_RISK", "toStatus": "REVIEW", "reason": "held for review: virtual-operator phone"},
]


async def test_a_held_order_keeps_its_stock_and_cannot_be_paid_until_approved(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(2)
    order = await held(shop, coins)
    unpaid = (await shop.gql(PAY, {"id": order["order"]["id"]}, key=shop.keys.admin))["data"]["payOrder"]
    held_codes = await shop.ledger.codes(coins)
    before = datetime.now(UTC)

    approved = await review(shop, order, "PASS", "called the buyer")
    paid = (await shop.gql(PAY, {"id": order["order"]["id"], "reference": "pay-2"}, key=shop.keys.admin))["data"]["payOrder"]

    # The payment made during the review is owed back; a new one pays the approved order.
    assert unpaid == {"order": {"status": "REVIEW"}, "userErrors": [{"code": "REFUND_REQUESTED"}]}
    assert held_codes == {"AVAILABLE": 1, "RESERVED": 1}
    actor = f"admin:{shop.keys.prefix(shop.keys.admin)}"
    assert approved["userErrors"] == [] and approved["order"]["events"] == [
        *HELD, {"actor": actor, "fromStatus": "REVIEW", "toStatus": "PENDING_PAYMENT", "reason": "approved on review: called the buyer"},
    ]
    # A fresh payment deadline from the approval, not from the placing.
    deadline = datetime.fromisoformat(approved["order"]["expiresAt"])
    assert before + timedelta(seconds=shop.settings.order_ttl_seconds - 5) < deadline
    assert paid == {"order": {"status": "PAID"}, "userErrors": []}


async def test_a_rejected_review_releases_the_stock_exactly_once(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(2)
    order = await held(shop, coins)

    rejected = await review(shop, order, "REJECT", "stolen card")
    again = await review(shop, order, "REJECT")
    approved_late = await review(shop, order, "PASS")

    assert rejected["userErrors"] == [] and rejected["order"]["status"] == "REJECTED"
    assert rejected["order"]["events"][-1]["reason"] == "rejected on review: stolen card"
    assert [again["userErrors"], approved_late["userErrors"]] == [[{"field": "orderId", "code": "INVALID_STATE"}]] * 2
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 2}
    assert await shop.ledger.allocations(coins) == Counter({("CODE", "RELEASED"): 1})


async def test_review_is_not_a_decision_and_only_operators_decide(shop: Shop) -> None:
    order = await held(shop, await shop.shelf.card_codes(1))

    undecided = await review(shop, order, "REVIEW")
    by_partner = await shop.gql(REVIEW, {"id": order["order"]["id"], "decision": "PASS"}, key=shop.keys.taobao)
    by_buyer = await shop.gql(REVIEW, {"id": order["order"]["id"], "decision": "PASS"}, key=order["accessToken"])

    assert undecided["userErrors"] == [{"field": "decision", "code": "INVALID_DECISION"}]
    assert [e["extensions"]["code"] for e in by_partner["errors"] + by_buyer["errors"]] == ["FORBIDDEN", "UNAUTHENTICATED"]


async def test_an_undecided_review_expires_and_releases_its_stock(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    order = await held(shop, coins)
    async with shop.db.sessions() as session, session.begin():
        await session.execute(update(Order).where(Order.number == order["order"]["number"])
                              .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))

    await expire_once(shop.db, MemoryBroker())

    found = await shop.gql("query($id: ID!) { order(id: $id) { status events { reason } } }", {"id": order["order"]["id"]}, key=shop.keys.admin)
    assert found["data"]["order"] == {"status": "EXPIRED", "events": [{"reason": "placed"}, {"reason": HELD[1]["reason"]}, {"reason": "not reviewed in time"}]}
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 1}


async def test_a_partner_reads_its_own_channels_verdicts_only(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(3)
    on_taobao = await held(shop, coins, channel="taobao", key=shop.keys.taobao)
    order_id = on_taobao["order"]["id"]

    by_owner = await shop.gql(ORDER, {"id": order_id}, key=shop.keys.taobao)
    by_buyer = await shop.gql(ORDER, {"id": order_id}, key=on_taobao["accessToken"])
    verdict_id = by_owner["data"]["order"]["riskVerdict"]["id"]
    own_list = await shop.gql(VERDICTS, {}, key=shop.keys.taobao)
    other_list = await shop.gql(VERDICTS, {}, key=shop.keys.b2b)
    other_asks = await shop.gql(VERDICTS, {"channel": "taobao"}, key=shop.keys.b2b)
    storefront = await shop.gql(VERDICTS, {}, key=shop.keys.web)
    nodes = [await shop.gql(NODE, {"id": verdict_id}, key=key) for key in (shop.keys.taobao, shop.keys.b2b, shop.keys.web, None)]

    assert by_owner["data"]["order"] == {"status": "REVIEW", "riskVerdict": {
        "id": verdict_id, "decision": "REVIEW", "score": 50,
        "reasons": [{"rule": "virtual-operator phone", "observed": "phone segment 170",
                     "threshold": "virtual-operator segments 162,165,167,170,171"}]}}
    assert by_buyer["data"]["order"] == {"status": "REVIEW", "riskVerdict": None}
    assert own_list["data"]["riskVerdicts"]["edges"] == [
        {"node": {"channel": "taobao", "decision": "REVIEW", "order": {"number": on_taobao["order"]["number"]}}}]
    assert other_list == {"data": {"riskVerdicts": {"edges": []}}}
    assert [other_asks["errors"][0]["extensions"]["code"], storefront["errors"][0]["extensions"]["code"]] == ["FORBIDDEN", "FORBIDDEN"]
    assert [n["data"]["node"] for n in nodes] == [{"decision": "REVIEW", "channel": "taobao"}, None, None, None]


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(tmp_path_factory: pytest.TempPathFactory) -> None:
    seen = []
    for folder, trusted in (("untrusted", ""), ("trusted", "127.0.0.0/8")):
        async with open_shop(tmp_path_factory.mktemp(folder), trusted_proxies=trusted) as shop:
            coins = await shop.shelf.card_codes(1)
            body = {"query": PLACE, "variables": {"input": order_input((coins, 1))}}
            headers = {"x-forwarded-for": "198.51.100.23", "x-device-id": "device-7"}
            await shop.client.http.post("/graphql", json=body, headers=headers)
            facts = (await shop.gql(FACTS, key=shop.keys.admin))["data"]["riskVerdicts"]["edges"][0]["node"]["facts"]
            seen.append((facts["clientIp"], facts["deviceId"]))

    # The test client's peer is 127.0.0.1: its header is believed only once it is a trusted proxy.
    assert seen == [("127.0.0.1", "device-7"), ("198.51.100.23", "device-7")]


async def test_the_buyer_hears_the_review_decision(app: object, gql: GraphQLClient, demo: DemoCatalog, keys: Keys) -> None:
    answer = await gql(PLACE, {"input": {
        "channel": "web", "idempotencyKey": "review-followed-order", "lines": [{"skuId": demo.sku_id("QB-10"), "quantity": 1}],
        "buyer": VIRTUAL,
    }})
    placed = answer["data"]["placeOrder"]
    assert placed["order"]["status"] == "REVIEW", answer
    async with connected(app, TRANSPORT_WS) as ws:
        await _open(ws, placed["accessToken"])
        await ws.send_json({"id": "o", "type": "subscribe", "payload": {"query": ORDER_STATUS, "variables": {"id": placed["order"]["id"]}}})
        await _settle(ws)
        await gql(REVIEW, {"id": placed["order"]["id"], "decision": "PASS"}, key=keys.admin)

        assert await receive(ws) == {"id": "o", "type": "next", "payload": {"data": {"orderStatusChanged": {"status": "PENDING_PAYMENT"}}}}
    await gql(CANCEL, {"id": placed["order"]["id"]}, key=placed["accessToken"])
