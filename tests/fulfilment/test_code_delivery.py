"""Code orders: sold once, delivered to the inbox, masked until revealed, every reveal audited."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
from sqlalchemy import func, select

from domain.catalog import CodeStatus
from models import CardCode, InboxMessage, Job, JobAttempt
from tests.fulfilment.conftest import Fulfilling
from tests.fulfilment.fakes import FakeSupplier

CODES = """
query Codes($id: ID!, $reveal: Boolean!) {
  order(id: $id) { lines { codes(reveal: $reveal) { number secret } } }
}
"""
REVEALS = """
query Reveals($id: ID!) { order(id: $id) { lines { reveals { actor } } } }
"""
RESEND = """
mutation Resend($id: ID!) { resendDelivery(orderLineId: $id) { orderLine { outcome } userErrors { code } } }
"""
EVENTS = """
query Events($id: ID!) { order(id: $id) { events { fromStatus toStatus actor } } }
"""


async def _sold(f: Fulfilling, line_gid: str) -> int:
    from schema.relay import decode_pk
    async with f.db.fresh_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CardCode).where(
            CardCode.order_line_id == decode_pk(line_gid, "OrderLine"), CardCode.status == CodeStatus.SOLD)) or 0)


async def test_a_paid_code_order_is_delivered_with_masked_codes(fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]) -> None:
    order = await fulfilling.place(("QB-10", 2))
    assert await fulfilling.pay(order) == "PAID"
    await fulfilling.settle()
    status = await fulfilling.status(order)
    line = status["lines"][0]
    assert (status["status"], line["outcome"], line["deliveries"]) == (
        "DELIVERED", "DELIVERED", [{"channel": "INBOX", "status": "SENT", "attempts": 1}]
    )
    assert [code["secret"][:-4] for code in line["codes"]] == ["*" * 15, "*" * 15]
    assert await _sold(fulfilling, line["id"]) == 2
    events = (await fulfilling.gql(EVENTS, {"id": order["id"]}, key=fulfilling.keys.admin))["data"]["order"]["events"]
    assert [(e["fromStatus"], e["toStatus"]) for e in events][-3:] == [
        ("PENDING_PAYMENT", "PAID"), ("PAID", "FULFILLING"), ("FULFILLING", "DELIVERED")
    ]
    async with fulfilling.db.fresh_sessions() as session:
        inbox = list(await session.scalars(select(InboxMessage.body).join(Job, Job.order_id == InboxMessage.order_id)
                                           .where(Job.key == f"fulfil:{_pk(order)}")))
        attempts = list(await session.scalars(select(JobAttempt.outcome).join(Job).where(Job.key == f"fulfil:{_pk(order)}")))
    assert attempts == ["DONE"]
    assert all("*" not in body and line["codes"][0]["number"] not in body for body in inbox) and len(inbox) == 2


async def test_the_buyer_reveals_codes_and_the_reveal_is_audited(fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]) -> None:
    order = await fulfilling.place(("QB-10", 1))
    await fulfilling.pay(order)
    await fulfilling.settle()
    revealed = await fulfilling.gql(CODES, {"id": order["id"], "reveal": True}, key=order["token"])
    secret = revealed["data"]["order"]["lines"][0]["codes"][0]["secret"]
    masked = await fulfilling.gql(CODES, {"id": order["id"], "reveal": False}, key=order["token"])
    assert "*" not in secret and masked["data"]["order"]["lines"][0]["codes"][0]["secret"] == "*" * 15 + secret[-4:]
    reveals = await fulfilling.gql(REVEALS, {"id": order["id"]}, key=fulfilling.keys.admin)
    assert reveals == {"data": {"order": {"lines": [{"reveals": [{"actor": f"buyer:{order['number']}"}]}]}}}


async def test_another_channel_and_a_storefront_key_cannot_reveal(fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]) -> None:
    order = await fulfilling.place(("QB-10", 1))
    await fulfilling.pay(order)
    await fulfilling.settle()
    for key in (fulfilling.keys.taobao, fulfilling.keys.web):
        assert await fulfilling.gql(CODES, {"id": order["id"], "reveal": True}, key=key) == {"data": {"order": None}}
    buyer_reads_reveals = await fulfilling.gql(REVEALS, {"id": order["id"]}, key=order["token"])
    assert buyer_reads_reveals["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    reveals = await fulfilling.gql(REVEALS, {"id": order["id"]}, key=fulfilling.keys.admin)
    assert reveals == {"data": {"order": {"lines": [{"reveals": []}]}}}


async def test_resend_sends_the_same_codes_again_without_selling_another(fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]) -> None:
    order = await fulfilling.place(("QB-10", 1))
    await fulfilling.pay(order)
    await fulfilling.settle()
    before = await fulfilling.status(order)
    line = before["lines"][0]
    answer = await fulfilling.gql(RESEND, {"id": line["id"]}, key=order["token"])
    assert answer == {"data": {"resendDelivery": {"orderLine": {"outcome": "DELIVERED"}, "userErrors": []}}}
    await fulfilling.settle()
    after = (await fulfilling.status(order))["lines"][0]
    assert after["codes"] == line["codes"] and await _sold(fulfilling, line["id"]) == 1
    assert after["deliveries"] == [{"channel": "INBOX", "status": "SENT", "attempts": 2}]
    stranger = await fulfilling.gql(RESEND, {"id": line["id"]}, key=fulfilling.keys.taobao)
    assert stranger == {"data": {"resendDelivery": {"orderLine": None, "userErrors": [{"code": "NOT_FOUND"}]}}}


RESEND_ERRORS = """
mutation Resend($id: ID!) { resendDelivery(orderLineId: $id) { orderLine { outcome } userErrors { field message code } } }
"""


async def _resend_jobs(f: Fulfilling, line_gid: str) -> int:
    from schema.relay import decode_pk
    async with f.db.fresh_sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Job).where(
            Job.key.like(f"deliver:{decode_pk(line_gid, 'OrderLine')}:%:resend-%"))) or 0)


async def test_a_buyer_has_a_line_sent_again_at_most_three_times_an_hour(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    order = await fulfilling.place(("QB-10", 1))
    await fulfilling.pay(order)
    await fulfilling.settle()
    line = (await fulfilling.status(order))["lines"][0]

    # Six at once: the limit holds under concurrency, not only one after another.
    answers = await asyncio.gather(*(fulfilling.gql(RESEND_ERRORS, {"id": line["id"]}, key=order["token"]) for _ in range(6)))

    outcomes = sorted(tuple(e["code"] for e in a["data"]["resendDelivery"]["userErrors"]) for a in answers)
    assert outcomes == [(), (), (), ("RESEND_LIMIT",), ("RESEND_LIMIT",), ("RESEND_LIMIT",)]
    refused = next(a for a in answers if a["data"]["resendDelivery"]["userErrors"])["data"]["resendDelivery"]
    assert refused["orderLine"] is None
    assert refused["userErrors"][0]["field"] == "orderLineId"
    assert refused["userErrors"][0]["message"].startswith("a line's codes are sent again at most 3 times an hour; try again after ")
    assert await _resend_jobs(fulfilling, line["id"]) == 3  # one inbox job per resend that went out


async def test_the_resend_limit_opens_again_after_an_hour_and_never_binds_operators(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    from models import DeliveryResend
    from schema.relay import decode_pk
    order = await fulfilling.place(("QB-10", 1))
    await fulfilling.pay(order)
    await fulfilling.settle()
    line = (await fulfilling.status(order))["lines"][0]
    for _ in range(3):
        await fulfilling.gql(RESEND_ERRORS, {"id": line["id"]}, key=order["token"])

    operator = await fulfilling.gql(RESEND_ERRORS, {"id": line["id"]}, key=fulfilling.keys.admin)
    async with fulfilling.db.sessions() as session, session.begin():
        row = await session.get_one(DeliveryResend, decode_pk(line["id"], "OrderLine"))
        row.window_start -= timedelta(hours=1)  # an hour has passed
    later = await fulfilling.gql(RESEND_ERRORS, {"id": line["id"]}, key=order["token"])

    assert operator["data"]["resendDelivery"]["userErrors"] == []
    assert later["data"]["resendDelivery"]["userErrors"] == []
    assert await _resend_jobs(fulfilling, line["id"]) == 5


async def test_subscribers_follow_every_transition_to_delivered(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    order = await fulfilling.place(("GS-60", 1))
    async with asyncio.timeout(10), fulfilling.broker.subscribe(f"order.{order['number']}") as messages:
        await fulfilling.pay(order)
        await fulfilling.settle()
        seen = [orjson.loads(await anext(messages)) for _ in range(3)]
    assert [(m["previousStatus"], m["status"]) for m in seen] == [
        ("PENDING_PAYMENT", "PAID"), ("PAID", "FULFILLING"), ("FULFILLING", "DELIVERED")
    ]


def _pk(order: dict[str, str]) -> int:
    from schema.relay import decode_pk
    return decode_pk(order["id"], "Order")
