"""Refunds (prepaid credited back, late payments recorded), presale delivery, buyer notices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from broker import MemoryBroker
from domain.money import Money
from domain.orders import OrderStatus
from models import InboxMessage, Order, Refund
from schema.relay import decode_pk, encode_id
from services.core.unit_of_work import UnitOfWork
from services.payments import notifications
from services.settlement.prepaid import balance_of
from suppliers.base import Outcome
from tests.fulfilment.conftest import Fulfilling
from tests.fulfilment.fakes import FakeSupplier

IMPORT = """
mutation I($sku: ID!, $codes: [CardCodeInput!]!) { importCardCodes(skuId: $sku, codes: $codes) { imported } }
"""
STOCK = """
query S($id: ID!) { node(id: $id) { ... on Sku { stock { available } } } }
"""


async def _inbox(f: Fulfilling, order: dict[str, str]) -> list[str]:
    async with f.db.fresh_sessions() as session:
        return list(await session.scalars(select(InboxMessage.subject)
                                          .where(InboxMessage.order_id == decode_pk(order["id"], "Order"))
                                          .order_by(InboxMessage.id)))


async def test_a_prepaid_order_that_cannot_be_fulfilled_is_credited_back(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    fakes["sim-fast"].reset(default=Outcome.FAILED)
    fakes["sim-backup"].reset(default=Outcome.FAILED)
    order, before = await fulfilling.refunded_prepaid_order("100.00")
    channel_id = fulfilling.demo.channels["b2b-demo"]
    assert (await fulfilling.status(order))["status"] == "REFUNDED"
    async with fulfilling.db.fresh_sessions() as session:
        after = await balance_of(session, channel_id)
        refund = await session.scalar(select(Refund).where(Refund.order_id == decode_pk(order["id"], "Order")))
    assert after == before and (refund.status, refund.key) == ("CREDITED", f"order:{decode_pk(order['id'], 'Order')}")
    assert await _inbox(fulfilling, order) == [f"Order {order['number']}: refund of {Money(refund.amount_fen, 'CNY')}"]


async def test_a_payment_for_an_expired_order_is_recorded_for_refund_once(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    order = await fulfilling.place(("QB-10", 1))
    pk = decode_pk(order["id"], "Order")
    async with fulfilling.db.sessions() as session, session.begin():
        await session.execute(update(Order).where(Order.id == pk).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        total = await session.scalar(select(Order.total_fen).where(Order.id == pk))
    amount = f"{total // 100}.{total % 100:02d}"
    notice = notifications.Notification(f"late-{pk}", order["number"], "pay-late", amount, "CNY")
    another = notifications.Notification(f"late-{pk}-again", order["number"], "pay-late", amount, "CNY")
    handled = []
    for delivered in (notice, notice, another):  # the provider redelivers, and reports it once more: still one refund
        async with UnitOfWork(fulfilling.db, MemoryBroker()) as uow:
            handled.append((await notifications.apply(uow, delivered, now=datetime.now(UTC))).result)
    assert handled == [notifications.Result.REFUND_REQUESTED, notifications.Result.DUPLICATE,
                       notifications.Result.REFUND_REQUESTED]
    async with fulfilling.db.fresh_sessions() as session:
        refunds = list(await session.execute(select(Refund.amount_fen, Refund.status, Refund.reason, Refund.reference)
                                             .where(Refund.order_id == pk)))
        status = await session.scalar(select(Order.status).where(Order.id == pk))
    assert (status, [tuple(r) for r in refunds]) == (
        OrderStatus.EXPIRED, [(total, "REQUESTED", "the order expired before it was paid", "pay-late")]
    )


async def test_a_paid_presale_line_is_delivered_when_its_codes_are_imported(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    sku = encode_id("Sku", fulfilling.demo.skus["QB-100"])
    available = (await fulfilling.gql(STOCK, {"id": sku}, key=fulfilling.keys.admin))["data"]["node"]["stock"]["available"]
    order = await fulfilling.place(("QB-100", available + 1))
    await fulfilling.pay(order)
    await fulfilling.settle()
    assert (await fulfilling.status(order))["status"] == "FULFILLING"
    stamp = datetime.now(UTC).strftime("%H%M%S%f")
    answer = await fulfilling.gql(IMPORT, {"sku": sku, "codes": [{"secret": f"PRESALE-{stamp}", "number": f"P-{stamp}"}]},
                                  key=fulfilling.keys.admin)
    assert answer == {"data": {"importCardCodes": {"imported": 1}}}
    await fulfilling.settle()
    status = await fulfilling.status(order)
    assert (status["status"], len(status["lines"][0]["codes"])) == ("DELIVERED", available + 1)
    # The line's delivery and the order's notice are separate jobs: either may land first.
    assert sorted(await _inbox(fulfilling, order)) == [
        f"Order {order['number']} delivered", f"Order {order['number']}: Q币 100 元 delivered",
    ]


async def test_codes_imported_while_the_order_is_being_fulfilled_are_delivered_at_once(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    # Given a paid order of a presale line and a top-up line
    sku = encode_id("Sku", fulfilling.demo.skus["QB-100"])
    available = (await fulfilling.gql(STOCK, {"id": sku}, key=fulfilling.keys.admin))["data"]["node"]["stock"]["available"]
    order = await fulfilling.place(("QB-100", available + 1), ("GS-60", 1))
    await fulfilling.pay(order)

    # When the missing code is imported while fulfilment waits for the top-up's supplier
    async def import_codes(_: object) -> None:
        stamp = datetime.now(UTC).strftime("%H%M%S%f")
        answer = await fulfilling.gql(IMPORT, {"sku": sku, "codes": [{"secret": f"MIDWAY-{stamp}", "number": f"M-{stamp}"}]},
                                      key=fulfilling.keys.admin)
        assert answer == {"data": {"importCardCodes": {"imported": 1}}}

    fakes["sim-fast"].before_answering = import_codes
    await fulfilling.worker.run_once()
    # Then the order does not wait an hour for its next look: the jobs due now deliver it
    await fulfilling.worker.drain()

    status = await fulfilling.status(order)
    assert (status["status"], [len(line["codes"]) for line in status["lines"]]) == ("DELIVERED", [available + 1, 0])
