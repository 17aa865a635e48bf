"""Direct top-ups: failover, refunds, unknown outcomes, callbacks, bundles all or nothing."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import func, select, update

from domain.catalog import CodeStatus
from models import (
    Allocation,
    CardCode,
    InboxMessage,
    Job,
    LedgerTransaction,
    OrderLine,
    Refund,
    StockLevel,
    SupplierAttempt,
    TopUpTask,
)
from services.core.jobs import READY
from services.inventory.slots import rebalance
from schema.relay import decode_pk
from suppliers.base import Outcome, TopUp
from tests.fulfilment.conftest import Fulfilling
from tests.fulfilment.fakes import GOOD_SIGNATURE, FakeSupplier

S, F, P, U = Outcome.SUCCEEDED, Outcome.FAILED, Outcome.PENDING, Outcome.UNKNOWN


async def _stock(f: Fulfilling, code: str) -> tuple[int, int]:
    async with f.db.fresh_sessions() as session:
        # The SKU's figures are sums over its slots.
        on_hand, reserved = (await session.execute(
            select(func.sum(StockLevel.on_hand), func.sum(StockLevel.reserved))
            .where(StockLevel.sku_id == f.demo.skus[code]))).one()
        return int(on_hand), int(reserved)


async def _attempts(f: Fulfilling, order: dict[str, Any]) -> list[tuple[str, str, str]]:
    number = order["number"]
    async with f.db.fresh_sessions() as session:
        rows = (await session.execute(
            select(SupplierAttempt.supplier_id, SupplierAttempt.action, SupplierAttempt.outcome)
            .where(SupplierAttempt.request_id.like(f"{number}%")).order_by(SupplierAttempt.id))).all()
    codes = {v: k for k, v in f.demo.suppliers.items()}
    return [(codes[supplier], action, outcome) for supplier, action, outcome in rows]


async def _audit(f: Fulfilling, order: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """The order's supplier exchanges in the order they were recorded, and whether each moved the top-up."""
    async with f.db.fresh_sessions() as session:
        rows = (await session.execute(
            select(SupplierAttempt.supplier_id, SupplierAttempt.action, SupplierAttempt.outcome, SupplierAttempt.applied)
            .where(SupplierAttempt.request_id.like(f"{order['number']}%")).order_by(SupplierAttempt.id))).all()
    codes = {v: k for k, v in f.demo.suppliers.items()}
    return [(codes[supplier], action, outcome, applied) for supplier, action, outcome, applied in rows]


async def _refunds(f: Fulfilling, order: dict[str, Any]) -> list[tuple[int, str]]:
    async with f.db.fresh_sessions() as session:
        rows = await session.scalars(select(Refund).where(Refund.order_id == decode_pk(order["id"], "Order")))
        return [(row.amount_fen, row.status) for row in rows]


async def test_a_top_up_succeeds_and_takes_the_counter_stock(fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]) -> None:
    before = await _stock(fulfilling, "TXV-MONTH")
    order = await fulfilling.place(("TXV-MONTH", 1))
    await fulfilling.pay(order)
    await fulfilling.settle()
    assert (await fulfilling.status(order))["status"] == "DELIVERED"
    assert await _stock(fulfilling, "TXV-MONTH") == (before[0] - 1, before[1])
    assert [t.request_id for t in fakes["sim-fast"].submissions] == [order["number"]]
    assert await _attempts(fulfilling, order) == [("sim-fast", "SUBMIT", "SUCCEEDED")]


async def test_a_top_up_held_in_several_slots_is_sold_from_each_of_them(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    sku_id = fulfilling.demo.skus["IQY-YEAR"]
    async with fulfilling.db.sessions() as session, session.begin():
        assert await rebalance(session, sku_id, 60, 30) is None  # two units a slot
    order = await fulfilling.place(("IQY-YEAR", 3))
    await fulfilling.pay(order)
    await fulfilling.settle()
    assert (await fulfilling.status(order))["status"] == "DELIVERED"
    assert await _stock(fulfilling, "IQY-YEAR") == (57, 0)
    async with fulfilling.db.fresh_sessions() as session:
        sold = (await session.execute(
            select(Allocation.slot, Allocation.units, Allocation.state)
            .join(OrderLine, OrderLine.id == Allocation.line_id)
            .where(OrderLine.order_id == decode_pk(order["id"], "Order")))).all()
        first = (await session.execute(
            select(StockLevel.slot, StockLevel.on_hand).where(StockLevel.sku_id == sku_id, StockLevel.slot < 3)
            .order_by(StockLevel.slot))).all()
    assert sorted(sold) == [(0, 2, "SOLD"), (1, 1, "SOLD")]
    assert first == [(0, 0), (1, 1), (2, 2)]


async def test_a_definitive_failure_fails_over_to_the_next_supplier(fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]) -> None:
    fakes["sim-fast"].reset(default=F)
    order = await fulfilling.place(("GS-60", 1))
    await fulfilling.pay(order)
    await fulfilling.settle()
    assert (await fulfilling.status(order))["status"] == "DELIVERED"
    assert await _attempts(fulfilling, order) == [("sim-fast", "SUBMIT", "FAILED"), ("sim-backup", "SUBMIT", "SUCCEEDED")]


async def test_when_every_supplier_fails_the_order_is_refunded_and_stock_released(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    fakes["sim-fast"].reset(default=F)
    fakes["sim-backup"].reset(default=F)
    before = await _stock(fulfilling, "GS-60")
    order = await fulfilling.place(("GS-60", 2))
    await fulfilling.pay(order)
    await fulfilling.settle()
    assert (await fulfilling.status(order))["status"] == "REFUNDED"
    assert await _stock(fulfilling, "GS-60") == before
    assert await _refunds(fulfilling, order) == [(1200, "REQUESTED")]


async def test_a_timeout_is_queried_before_anything_is_sent_again(fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]) -> None:
    # The first submit times out and never arrived: the query says NOT_FOUND, so the same
    # request goes to the same supplier again.
    fakes["sim-fast"].reset(U)
    lost = await fulfilling.place(("GS-60", 1))
    await fulfilling.pay(lost)
    await fulfilling.settle()
    assert (await fulfilling.status(lost))["status"] == "DELIVERED"
    assert await _attempts(fulfilling, lost) == [
        ("sim-fast", "SUBMIT", "UNKNOWN"), ("sim-fast", "QUERY", "NOT_FOUND"), ("sim-fast", "SUBMIT", "SUCCEEDED")
    ]
    # The submit timed out but the supplier credited it: the query finds out; nothing is resent.
    fakes["sim-fast"].reset(U)
    fakes["sim-fast"].query_answers = [S]
    credited = await fulfilling.place(("GS-60", 1))
    await fulfilling.pay(credited)
    await fulfilling.settle()
    assert (await fulfilling.status(credited))["status"] == "DELIVERED"
    assert await _attempts(fulfilling, credited) == [("sim-fast", "SUBMIT", "UNKNOWN"), ("sim-fast", "QUERY", "SUCCEEDED")]
    assert [t.request_id for t in fakes["sim-fast"].submissions] == [credited["number"]]
    assert fakes["sim-backup"].submissions == []


async def _callback(f: Fulfilling, supplier: str, body: dict[str, Any], signature: str = GOOD_SIGNATURE) -> tuple[int, Any]:
    response = await f.http.post(f"/webhooks/supplier/{supplier}", content=orjson.dumps(body),
                                 headers={"x-fake-signature": signature})
    return response.status_code, response.json()


async def test_a_pending_top_up_ends_with_its_signed_callback_once(fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]) -> None:
    fakes["sim-fast"].reset(P)
    fakes["sim-fast"].query_answers = [P] * 10
    order = await fulfilling.place(("GS-60", 1))
    await fulfilling.pay(order)
    await fulfilling.worker.run_once()
    assert (await fulfilling.status(order))["status"] == "FULFILLING"
    callback = {"request_id": order["number"], "status": "SUCCEEDED", "reference": "R-1"}
    assert await _callback(fulfilling, "sim-fast", callback, "forged") == (401, {"error": "BAD_SIGNATURE", "message": "the signature does not verify"})
    assert (await _callback(fulfilling, "sim-fast", {"nonsense": 1}))[0] == 400
    assert await _callback(fulfilling, "sim-fast", {**callback, "padding": "x" * 70_000}) == (
        413, {"error": "TOO_LARGE", "message": "callbacks are limited to 65536 bytes"})
    assert await _attempts(fulfilling, order) == [("sim-fast", "SUBMIT", "PENDING")]
    assert await _callback(fulfilling, "sim-fast", callback) == (200, {"status": "applied", "requestId": order["number"]})
    assert await _callback(fulfilling, "sim-fast", callback) == (200, {"status": "ignored", "requestId": order["number"]})
    await fulfilling.worker.run_once()
    assert (await fulfilling.status(order))["status"] == "DELIVERED"
    # The repeated callback is on the audit trail too, as an exchange that changed nothing.
    assert await _audit(fulfilling, order) == [
        ("sim-fast", "SUBMIT", "PENDING", True), ("sim-fast", "CALLBACK", "SUCCEEDED", True),
        ("sim-fast", "CALLBACK", "SUCCEEDED", False),
    ]


async def test_a_callback_that_arrives_before_the_submission_is_answered_leaves_both_exchanges_audited(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    # Given a supplier that calls back with the result while our submission is still waiting
    # for its answer (the answer, PENDING, arrives after the top-up was decided by the callback)
    order = await fulfilling.place(("GS-60", 1))
    callbacks: list[tuple[int, Any]] = []

    async def call_back_first(topup: TopUp) -> None:
        body = {"request_id": topup.request_id, "status": "SUCCEEDED", "reference": "R-early"}
        callbacks.append(await _callback(fulfilling, "sim-fast", body))

    fakes["sim-fast"].reset(P)
    fakes["sim-fast"].before_answering = call_back_first

    # When the order is paid and fulfilled
    await fulfilling.pay(order)
    await fulfilling.settle()

    # Then the callback decided the top-up, and the submission that raced it is audited, not lost
    assert callbacks == [(200, {"status": "applied", "requestId": order["number"]})]
    assert (await fulfilling.status(order))["status"] == "DELIVERED"
    assert await _audit(fulfilling, order) == [
        ("sim-fast", "CALLBACK", "SUCCEEDED", True), ("sim-fast", "SUBMIT", "PENDING", False),
    ]
    assert [t.request_id for t in fakes["sim-fast"].submissions] == [order["number"]]


async def test_a_bundle_whose_top_up_fails_is_refunded_whole_and_its_codes_go_back(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    fakes["sim-fast"].reset(default=F)
    fakes["sim-backup"].reset(default=F)
    order = await fulfilling.place(("PACK-GAMER", 1))
    line = decode_pk((await fulfilling.status(order))["lines"][0]["id"], "OrderLine")
    async with fulfilling.db.fresh_sessions() as session:
        held = list(await session.scalars(select(CardCode.id).where(CardCode.order_line_id == line)))
    await fulfilling.pay(order)
    await fulfilling.settle()
    status = await fulfilling.status(order)
    # No code went out; the top-up is shown failed after both suppliers refused it.
    assert (status["status"], status["lines"][0]["codes"], status["lines"][0]["deliveries"]) == (
        "REFUNDED", [], [{"channel": "SUPPLIER", "status": "FAILED", "attempts": 2}])
    async with fulfilling.db.fresh_sessions() as session:
        back = (await session.execute(select(CardCode.status, CardCode.order_line_id).where(CardCode.id.in_(held)))).all()
    assert [tuple(row) for row in back] == [(CodeStatus.AVAILABLE, None)]
    # The bundle's top-up went to both suppliers and failed at both; nothing else was sent.
    assert await _attempts(fulfilling, order) == [("sim-fast", "SUBMIT", "FAILED"), ("sim-backup", "SUBMIT", "FAILED")]
    assert await _refunds(fulfilling, order) == [(5200, "REQUESTED")]


async def test_a_bundle_delivers_its_codes_after_its_top_up_succeeded(fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]) -> None:
    order = await fulfilling.place(("PACK-GAMER", 1))
    await fulfilling.pay(order)
    await fulfilling.settle()
    status = await fulfilling.status(order)
    line = status["lines"][0]
    assert (status["status"], len(line["codes"]), line["deliveries"]) == (
        "DELIVERED", 1, [{"channel": "INBOX", "status": "SENT", "attempts": 1},
                         {"channel": "SUPPLIER", "status": "SENT", "attempts": 1}]
    )
    async with fulfilling.db.fresh_sessions() as session:
        task = await session.scalar(select(TopUpTask).where(TopUpTask.line_id == decode_pk(line["id"], "OrderLine")))
    assert (task.request_id, task.status) == (order["number"], "SUCCEEDED")


async def test_a_run_that_lost_its_lease_during_the_call_keeps_no_decision_and_the_next_delivers_once(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    # Given a paid top-up whose run loses its job to another worker while the supplier answers
    order = await fulfilling.place(("GS-60", 1))
    order_id = decode_pk(order["id"], "Order")
    async with fulfilling.db.fresh_sessions() as session:
        before = await session.scalar(select(func.sum(StockLevel.on_hand)).where(StockLevel.sku_id == fulfilling.demo.skus["GS-60"]))

    async def taken_over(topup: TopUp) -> None:
        async with fulfilling.db.sessions() as session, session.begin():
            await session.execute(update(Job).where(Job.order_id == order_id).values(lease="other:gateway-2"))

    fakes["sim-fast"].before_answering = taken_over
    await fulfilling.pay(order)
    await fulfilling.worker.run_once()

    # Then that run decided nothing: the order is not delivered and the job is not done
    assert (await fulfilling.status(order))["status"] == "FULFILLING"
    async with fulfilling.db.fresh_sessions() as session:
        assert await session.scalar(select(Job.status).where(Job.order_id == order_id)) == READY

    # When the other worker's lease ends and the job runs again
    fakes["sim-fast"].before_answering = None
    async with fulfilling.db.sessions() as session, session.begin():
        await session.execute(update(Job).where(Job.order_id == order_id).values(lease=None, locked_until=None))
    await fulfilling.settle()

    # Then the order is delivered once: one submission, one delivery posting, one notice, one unit sold
    assert (await fulfilling.status(order))["status"] == "DELIVERED"
    assert [t.request_id for t in fakes["sim-fast"].submissions] == [order["number"]]
    # (the first run's answer is kept as applied on PostgreSQL's driver path, which records it
    # apart from the decision; the general path rolls it back with the decision and queries)
    assert [row[2:] for row in await _audit(fulfilling, order)].count(("SUCCEEDED", True)) == 1
    async with fulfilling.db.fresh_sessions() as session:
        line = await session.scalar(select(OrderLine.id).where(OrderLine.order_id == order_id))
        postings = await session.scalar(select(func.count()).select_from(LedgerTransaction)
                                        .where(LedgerTransaction.key == f"delivery:{line}"))
        notices = await session.scalar(select(func.count()).select_from(InboxMessage)
                                       .where(InboxMessage.order_id == order_id))
        after = await session.scalar(select(func.sum(StockLevel.on_hand)).where(StockLevel.sku_id == fulfilling.demo.skus["GS-60"]))
    assert (postings, notices, before - after) == (1, 1, 1)
