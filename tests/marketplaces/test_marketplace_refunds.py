"""Refunds asked on a marketplace after delivery: a Refund request on the order, decided once by
an operator, booked on the ledger when agreed, and the decision reported back to the marketplace
once, with retries."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from marketplaces import wire
from models import LedgerTransaction, OrderLine, Refund
from tests.marketplaces.conftest import Market

REFUNDS = """
query Order($id: ID!) { order(id: $id) { status total { amount } refunds { id amount { amount } status reference reason } } }
"""
RESOLVE = """
mutation Resolve($id: ID!, $agree: Boolean!, $reason: String) {
  resolveMarketplaceRefund(id: $id, agree: $agree, reason: $reason) {
    refund { status reference } trade { refundStatus refundReport { status attempts error } } userErrors { field code }
  }
}
"""


async def _delivered_with_refund(shop: Market, reason: str = "买错了") -> tuple[str, dict[str, Any]]:
    tid = await shop.sell("GS-60", account="800123456", price="6.00")  # a top-up: stock for every test
    await shop.pull()
    await shop.settle()
    assert (await shop.trade(tid))["deliveryReport"]["status"] == "REPORTED"
    refund = (await shop.shop.post("/control/refunds", json={"tid": tid, "reason": reason})).json()["refund"]
    assert refund["status"] == "WAIT_SELLER_AGREE"
    return tid, refund


async def _order(shop: Market, tid: str, key: str | None = None) -> dict[str, Any] | None:
    trade = await shop.trade(tid)
    assert trade is not None
    answer = await shop.gql(REFUNDS, {"id": trade["orderId"]}, key=key or shop.keys.admin)
    return answer["data"]["order"]


async def _decisions(shop: Market, refund_id: str) -> list[dict[str, Any]]:
    found = [r for r in (await shop.shop.get("/control/refunds")).json() if r["refund_id"] == refund_id]
    return [r["decision"] for r in found if r["decision"] is not None]


async def _reversals(shop: Market, tid: str) -> int:
    trade = await shop.trade(tid)
    assert trade is not None
    async with shop.db.fresh_sessions() as session:
        lines = list(await session.scalars(select(OrderLine.id).join(
            Refund, Refund.order_id == OrderLine.order_id).where(Refund.reference == f"R{tid}")))
        return int(await session.scalar(select(func.count()).select_from(LedgerTransaction).where(
            LedgerTransaction.key.in_([f"refund:{line}" for line in lines]))) or 0)


async def test_a_refund_after_delivery_is_one_request_however_often_it_comes(shop: Market) -> None:
    # Given a delivered marketplace order whose buyer asked for a refund
    tid, refund = await _delivered_with_refund(shop)
    # When the refund is pushed, the push replayed, and the refund pulled as well
    pushed = shop.push_params(wire.REFUND_TOPIC, refund)
    answers = await asyncio.gather(*(shop.push(pushed) for _ in range(3)))
    assert sorted(a.json()["status"] for a in answers) == ["IGNORED", "IGNORED", "REQUESTED"]
    await shop.pull()
    # Then the order carries one refund request, for operators, with the marketplace's reason and id
    order = await _order(shop, tid)
    assert order is not None and order["status"] == "DELIVERED"
    assert [(r["status"], r["reference"], r["reason"], r["amount"]["amount"]) for r in order["refunds"]] == [
        ("REQUESTED", refund["refund_id"], "买错了", order["total"]["amount"])]
    # And the order's channel sees it too; another channel does not see the order
    assert (await _order(shop, tid, shop.keys.taobao))["refunds"] == order["refunds"]
    assert await _order(shop, tid, shop.keys.b2b) is None
    assert await _decisions(shop, refund["refund_id"]) == []


async def test_an_agreed_refund_refunds_the_order_books_the_ledger_and_is_reported_once(shop: Market) -> None:
    tid, refund = await _delivered_with_refund(shop)
    await shop.push(shop.push_params(wire.REFUND_TOPIC, refund))
    requested = (await _order(shop, tid))["refunds"][0]
    # When an operator agrees, twice over
    agreed = await shop.gql(RESOLVE, {"id": requested["id"], "agree": True}, key=shop.keys.admin)
    again = await shop.gql(RESOLVE, {"id": requested["id"], "agree": True}, key=shop.keys.admin)
    await shop.settle()
    # Then the refund is AGREED, the order REFUNDED, its delivery reversed on the ledger
    assert agreed["data"]["resolveMarketplaceRefund"] == {
        "refund": {"status": "AGREED", "reference": refund["refund_id"]},
        "trade": {"refundStatus": "AGREED", "refundReport": {"status": "PENDING", "attempts": 0, "error": None}},
        "userErrors": []}
    assert again["data"]["resolveMarketplaceRefund"]["userErrors"] == [{"field": "id", "code": "INVALID_STATE"}]
    order = await _order(shop, tid)
    assert (order["status"], [r["status"] for r in order["refunds"]]) == ("REFUNDED", ["AGREED"])
    assert await _reversals(shop, tid) == 1
    # And the marketplace was told once, in its own shape
    assert [(d["agree"], d["amount"], d["requests"]) for d in await _decisions(shop, refund["refund_id"])] == [
        (True, order["total"]["amount"], 1)]
    assert (await shop.trade(tid))["refundReport"] == {"status": "REPORTED", "attempts": 1, "error": None}
    # A replay of the old push afterwards changes nothing
    replay = await shop.push(shop.push_params(wire.REFUND_TOPIC, refund))
    assert replay.json() == {"success": True, "status": "IGNORED"}
    assert [r["status"] for r in (await _order(shop, tid))["refunds"]] == ["AGREED"]


async def test_a_refused_refund_needs_a_reason_keeps_the_order_and_is_reported(shop: Market) -> None:
    tid, refund = await _delivered_with_refund(shop)
    await shop.pull()
    requested = (await _order(shop, tid))["refunds"][0]
    bare = await shop.gql(RESOLVE, {"id": requested["id"], "agree": False}, key=shop.keys.admin)
    assert bare["data"]["resolveMarketplaceRefund"]["userErrors"] == [{"field": "reason", "code": "INVALID_INPUT"}]
    refused = await shop.gql(RESOLVE, {"id": requested["id"], "agree": False, "reason": "卡密已使用"}, key=shop.keys.admin)
    assert refused["data"]["resolveMarketplaceRefund"]["refund"]["status"] == "REFUSED"
    await shop.settle()
    order = await _order(shop, tid)
    assert (order["status"], [r["status"] for r in order["refunds"]]) == ("DELIVERED", ["REFUSED"])
    assert await _reversals(shop, tid) == 0
    assert [(d["agree"], d["message"], d["requests"]) for d in await _decisions(shop, refund["refund_id"])] == [
        (False, "卡密已使用", 1)]


async def test_a_decision_report_that_fails_is_retried_and_recorded_once(shop: Market) -> None:
    await shop.faults(fail_decisions=2)
    tid, refund = await _delivered_with_refund(shop)
    await shop.pull()
    requested = (await _order(shop, tid))["refunds"][0]
    await shop.gql(RESOLVE, {"id": requested["id"], "agree": True}, key=shop.keys.admin)
    await shop.settle()
    assert (await shop.trade(tid))["refundReport"] == {"status": "REPORTED", "attempts": 3, "error": None}
    assert [d["requests"] for d in await _decisions(shop, refund["refund_id"])] == [1]


async def test_two_operators_deciding_at_once_make_one_decision(shop: Market) -> None:
    tid, refund = await _delivered_with_refund(shop)
    await shop.pull()
    requested = (await _order(shop, tid))["refunds"][0]
    answers = await asyncio.gather(
        *(shop.gql(RESOLVE, {"id": requested["id"], "agree": True}, key=shop.keys.admin) for _ in range(3)),
        *(shop.gql(RESOLVE, {"id": requested["id"], "agree": False, "reason": "no"}, key=shop.keys.admin)
          for _ in range(3)))
    won = [a["data"]["resolveMarketplaceRefund"]["refund"] for a in answers
           if a["data"]["resolveMarketplaceRefund"]["userErrors"] == []]
    assert len(won) == 1
    await shop.settle()
    assert len(await _decisions(shop, refund["refund_id"])) == 1
    assert await _reversals(shop, tid) == (1 if won[0]["status"] == "AGREED" else 0)


async def test_forged_refund_pushes_and_partners_change_nothing(shop: Market) -> None:
    tid, refund = await _delivered_with_refund(shop)
    forged = shop.push_params(wire.REFUND_TOPIC, refund, secret="guessed-secret")
    other_app = {**shop.push_params(wire.REFUND_TOPIC, refund), "app_key": "another-app"}
    for params in (forged, other_app):
        answer = await shop.push(params)
        assert (answer.status_code, answer.json()["error"]) == (401, "BAD_SIGNATURE")
    assert (await shop.http.post("/marketplaces/b2b-demo/push", data=forged)).status_code == 404
    assert (await _order(shop, tid))["refunds"] == []
    await shop.push(shop.push_params(wire.REFUND_TOPIC, refund))
    requested = (await _order(shop, tid))["refunds"][0]
    for key in (shop.keys.taobao, shop.keys.b2b, shop.keys.web):
        answer = await shop.gql(RESOLVE, {"id": requested["id"], "agree": True}, key=key)
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert [r["status"] for r in (await _order(shop, tid))["refunds"]] == ["REQUESTED"]


async def test_only_marketplace_refunds_are_resolved_here(shop: Market) -> None:
    answer = await shop.gql(RESOLVE, {"id": "UmVmdW5kOjk5OTk5OTk=", "agree": True}, key=shop.keys.admin)  # Refund:9999999
    assert answer["data"]["resolveMarketplaceRefund"]["userErrors"] == [{"field": "id", "code": "NOT_FOUND"}]
    too_long = await shop.gql(RESOLVE, {"id": "UmVmdW5kOjk5OTk5OTk=", "agree": False, "reason": "x" * 201},
                              key=shop.keys.admin)
    assert too_long["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_refund_withdrawn_on_the_marketplace_can_no_longer_be_agreed_to(shop: Market) -> None:
    tid, refund = await _delivered_with_refund(shop)
    await shop.pull()
    requested = (await _order(shop, tid))["refunds"][0]
    # When the buyer withdraws it on the marketplace, and that is pushed (twice)
    withdrawn = (await shop.shop.post("/control/refunds", json={"tid": tid, "withdraw": True})).json()["refund"]
    assert withdrawn["status"] == "CLOSED"
    answers = [await shop.push(shop.push_params(wire.REFUND_TOPIC, withdrawn)) for _ in range(2)]
    assert [a.json()["status"] for a in answers] == ["CLOSED", "IGNORED"]
    # Then the request is closed, the order kept, and an operator can no longer agree to it
    order = await _order(shop, tid)
    assert (order["status"], [r["status"] for r in order["refunds"]]) == ("DELIVERED", ["CLOSED"])
    assert (await shop.trade(tid))["refundStatus"] == "CLOSED"
    late = await shop.gql(RESOLVE, {"id": requested["id"], "agree": True}, key=shop.keys.admin)
    assert late["data"]["resolveMarketplaceRefund"]["userErrors"] == [{"field": "id", "code": "INVALID_STATE"}]
    await shop.settle()
    assert await _reversals(shop, tid) == 0 and await _decisions(shop, refund["refund_id"]) == []
