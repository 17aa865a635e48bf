"""What fulfilment leaves in the ledger: a delivered line settled with the supplier that
delivered it, a refunded prepaid order returned to its balance once."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from domain.ledger import Kind
from domain.money import Money
from models import LedgerEntry, LedgerTransaction, OrderLine
from schema.relay import decode_pk
from services.settlement.ledger import prepaid_balance
from services.settlement.prepaid import balance_of
from suppliers.base import Outcome
from tests.fulfilment.conftest import Fulfilling
from tests.fulfilment.fakes import FakeSupplier


async def _postings(f: Fulfilling, order_id: int) -> list[tuple[str, str, int | None, int]]:
    async with f.db.fresh_sessions() as session:
        rows = await session.execute(
            select(LedgerEntry.kind, LedgerEntry.account, LedgerEntry.supplier_id, LedgerEntry.amount_fen)
            .where(LedgerEntry.order_id == order_id).order_by(LedgerEntry.id)
        )
        return [(kind.name, account.name, supplier, amount) for kind, account, supplier, amount in rows]


async def test_a_top_up_that_failed_over_is_settled_with_the_supplier_that_delivered_it(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    fakes["sim-fast"].reset(default=Outcome.FAILED)
    order = await fulfilling.place(("GS-60", 2), channel="taobao", key=fulfilling.keys.taobao)
    await fulfilling.pay(order)
    await fulfilling.settle()
    assert (await fulfilling.status(order))["status"] == "DELIVERED"

    order_id = decode_pk(order["id"], "Order")
    async with fulfilling.db.fresh_sessions() as session:
        unit = await session.scalar(select(OrderLine.unit_price_fen).where(OrderLine.order_id == order_id))
    gross = unit * 2
    cost = 540 * 2  # GS-60's supplier cost
    commission = Money(gross, "CNY").apply_rate(Decimal("0.05")).minor  # taobao: 5%
    backup = fulfilling.demo.suppliers["sim-backup"]
    assert await _postings(fulfilling, order_id) == [
        ("DELIVERY", "CHANNEL", backup, gross),
        ("DELIVERY", "SUPPLIER", backup, -cost),
        ("DELIVERY", "COMMISSION", backup, -commission),
        ("DELIVERY", "MARGIN", backup, -(gross - cost - commission)),
    ]


async def test_a_refunded_prepaid_order_goes_back_to_its_balance_once(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    fakes["sim-fast"].reset(default=Outcome.FAILED)
    fakes["sim-backup"].reset(default=Outcome.FAILED)
    order, before = await fulfilling.refunded_prepaid_order("50.00")
    channel_id = fulfilling.demo.channels["b2b-demo"]
    await fulfilling.settle()  # nothing is left to run twice
    assert (await fulfilling.status(order))["status"] == "REFUNDED"

    order_id = decode_pk(order["id"], "Order")
    async with fulfilling.db.fresh_sessions() as session:
        kinds = list(await session.scalars(
            select(LedgerTransaction.kind).join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .where(LedgerEntry.order_id == order_id).group_by(LedgerTransaction.id, LedgerTransaction.kind)
            .order_by(LedgerTransaction.id)
        ))
        after, from_entries = await balance_of(session, channel_id), await prepaid_balance(session, channel_id)
        unbalanced = await session.scalar(
            select(func.count()).select_from(
                select(LedgerEntry.transaction_id).where(LedgerEntry.order_id == order_id)
                .group_by(LedgerEntry.transaction_id).having(func.sum(LedgerEntry.amount_fen) != 0).subquery()
            )
        )
    # Paid from the balance, never delivered, returned once: no delivery or reversal postings.
    assert kinds == [Kind.PREPAID_PAYMENT, Kind.PREPAID_REFUND]
    assert (after, from_entries, unbalanced) == (before, before, 0)
