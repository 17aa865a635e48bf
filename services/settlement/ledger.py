"""Posting to the ledger, in the caller's transaction.

Each business event is one LedgerTransaction with a unique key; posting the same event
again meets the unique index (INSERT ... ON CONFLICT DO NOTHING) and writes nothing.
Entries are only inserted, never updated or deleted (a confirmed statement's claim aside).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, and_, bindparam, func, insert, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain import ledger
from domain.ledger import Account, Kind, Posting
from domain.money import Money
from models import Campaign, Channel, LedgerEntry, LedgerTransaction, Order, OrderLine, Sku, SkuSupplier


async def _open(session: AsyncSession, key: str, kind: Kind, at: datetime, actor: str = "system") -> int | None:
    """The new transaction's id, or None when this key was posted before (or is being posted now)."""
    connection = await session.connection()  # Core on the session's transaction: no ORM layer
    statement = _OPEN[connection.dialect.name == "postgresql"]
    return (await connection.execute(statement, {"key": key, "kind": kind, "at": at, "actor": actor})).scalar()


def _opening(upsert: Callable[..., Any]) -> Any:
    table = LedgerTransaction.__table__
    return (
        upsert(table).values(key=bindparam("key"), kind=bindparam("kind"), at=bindparam("at"), actor=bindparam("actor"))
        .on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id)
    )


# Built once per dialect (by "is it PostgreSQL"): every delivered line opens one.
_OPEN = {True: _opening(postgresql.insert), False: _opening(sqlite.insert)}
_ENTRY = insert(LedgerEntry.__table__)


def _entries(
    transaction_id: int, kind: Kind, postings: list[Posting], at: datetime, *, channel_id: int | None = None,
    supplier_id: int | None = None, order_id: int | None = None, line_id: int | None = None,
) -> list[LedgerEntry]:
    return [
        LedgerEntry(
            transaction_id=transaction_id, kind=kind, account=p.account, channel_id=channel_id,
            supplier_id=supplier_id, order_id=order_id, line_id=line_id, amount_fen=p.amount.minor,
            currency=p.amount.currency, at=at,
        )
        for p in postings
    ]


def _entry_rows(
    transaction_id: int, kind: Kind, postings: list[Posting], at: datetime, *, channel_id: int | None,
    supplier_id: int | None, order_id: int | None, line_id: int | None,
) -> list[dict[str, object]]:
    """The entries as rows for one Core INSERT (no ORM object per entry)."""
    return [
        {"transaction_id": transaction_id, "kind": kind, "account": p.account, "channel_id": channel_id,
         "supplier_id": supplier_id, "order_id": order_id, "line_id": line_id, "amount_fen": p.amount.minor,
         "currency": p.amount.currency, "at": at, "channel_statement_id": None, "supplier_statement_id": None}
        for p in postings
    ]


async def first_supplier(session: AsyncSession, sku_id: int) -> tuple[int | None, int | None]:
    """The SKU's first supplier and its own price for the SKU (None: the SKU's supplier cost)."""
    found = (await session.execute(
        select(SkuSupplier.supplier_id, SkuSupplier.cost_fen).where(SkuSupplier.sku_id == sku_id)
        .order_by(SkuSupplier.priority).limit(1)
    )).first()
    return (found[0], found[1]) if found is not None else (None, None)


async def post_delivery(session: AsyncSession, line_id: int, *, supplier_id: int | None, at: datetime) -> None:
    """Post a delivered order line: the buyer's payment, the supplier's cost, the channel's
    commission and the platform's margin. Once per line, however often it is called."""
    connection = await session.connection()  # Core on the session's transaction: no ORM layer
    if supplier_id is None:
        found = (await connection.execute(_DELIVERED_LINE, {"line": line_id})).one()
    else:
        found = (await connection.execute(_DELIVERED_LINE_OF, {"line": line_id, "supplier": supplier_id})).one()
    transaction_id = await _open(session, f"delivery:{line_id}", Kind.DELIVERY, at)
    if transaction_id is None:
        return
    cost = found.own_cost
    if supplier_id is None:
        supplier_id, cost = await first_supplier(session, found.sku_id)
    unit_cost = cost if cost is not None else found.supplier_cost_fen
    figures = ledger.line_figures(Money(found.unit_price_fen, found.currency), Money(unit_cost, found.currency),
                                  found.quantity, found.commission_bp)
    bearer = found.bearer.value if found.bearer is not None else "PLATFORM"
    postings = ledger.delivery_with_discount(figures, Money(found.discount_fen, found.currency), bearer)
    await connection.execute(_ENTRY, _entry_rows(
        transaction_id, Kind.DELIVERY, postings, at,
        channel_id=found.channel_id, supplier_id=supplier_id, order_id=found.order_id, line_id=line_id,
    ))


def _delivered_line(supplier: bool) -> Any:
    """What a delivered line posts from: its price and quantity, its order's channel and currency,
    the SKU's supplier cost and, for a named supplier, that supplier's own price (own_cost)."""
    own_cost = SkuSupplier.cost_fen if supplier else literal(None, BigInteger)
    query = (
        select(OrderLine.order_id, OrderLine.sku_id, OrderLine.quantity, OrderLine.unit_price_fen, Order.channel_id,
               Order.currency, Sku.supplier_cost_fen, Channel.commission_bp, own_cost.label("own_cost"),
               OrderLine.discount_fen, Campaign.bearer)
        .join(Order, Order.id == OrderLine.order_id)
        .outerjoin(Campaign, Campaign.id == Order.campaign_id)
        .join(Sku, Sku.id == OrderLine.sku_id)
        .join(Channel, Channel.id == Order.channel_id)
        .where(OrderLine.id == bindparam("line"))
    )
    if supplier:
        query = query.outerjoin(SkuSupplier, and_(SkuSupplier.sku_id == OrderLine.sku_id,
                                                  SkuSupplier.supplier_id == bindparam("supplier")))
    return query


_DELIVERED_LINE, _DELIVERED_LINE_OF = _delivered_line(False), _delivered_line(True)


async def post_refund(session: AsyncSession, line_id: int, *, at: datetime) -> None:
    """Post a refunded line: the exact reversal of its delivery, if it was delivered. Once per
    line. (The return of a prepaid payment is services/settlement/prepaid.py's: prepaid posts
    through this module, never the other way round.)"""
    delivered = await session.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.key == f"delivery:{line_id}")
    )
    if delivered is not None:
        transaction_id = await _open(session, f"refund:{line_id}", Kind.REFUND, at)
        if transaction_id is not None:
            # One INSERT ... SELECT: the negation of every delivery posting, parties and all.
            columns = ("transaction_id", "kind", "account", "channel_id", "supplier_id", "order_id", "line_id", "amount_fen", "currency", "at")
            source = select(
                literal(transaction_id), literal(Kind.REFUND.name), LedgerEntry.account, LedgerEntry.channel_id,
                LedgerEntry.supplier_id, LedgerEntry.order_id, LedgerEntry.line_id, -LedgerEntry.amount_fen,
                LedgerEntry.currency, literal(at, LedgerEntry.at.type),
            ).where(LedgerEntry.transaction_id == delivered).order_by(LedgerEntry.id)
            await session.execute(insert(LedgerEntry).from_select(columns, source))


def _prepaid_payment_key(order_id: int) -> str:
    return f"prepaid-payment:{order_id}"


async def post_prepaid_payment(session: AsyncSession, order: Order, at: datetime, actor: str) -> None:
    transaction_id = await _open(session, _prepaid_payment_key(order.id), Kind.PREPAID_PAYMENT, at, actor)
    if transaction_id is not None:
        postings = ledger.prepaid_payment(Money(order.total_fen, order.currency))
        session.add_all(_entries(transaction_id, Kind.PREPAID_PAYMENT, postings, at, channel_id=order.channel_id, order_id=order.id))


async def post_prepaid_refund(session: AsyncSession, line: OrderLine, order: Order, at: datetime) -> Money | None:
    """Return a line's payment to the balance: the amount returned, or None if the order was
    not paid from a balance or the line was returned before."""
    paid_from_balance = await session.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.key == _prepaid_payment_key(order.id))
    )
    if paid_from_balance is None:
        return None
    transaction_id = await _open(session, f"prepaid-refund:{line.id}", Kind.PREPAID_REFUND, at)
    if transaction_id is None:
        return None
    amount = Money(line.unit_price_fen * line.quantity, order.currency)
    session.add_all(_entries(
        transaction_id, Kind.PREPAID_REFUND, ledger.prepaid_refund(amount), at,
        channel_id=order.channel_id, order_id=order.id, line_id=line.id,
    ))
    return amount


async def post_unusable_payment(
    session: AsyncSession, refund_id: int, order: Order, amount: Money, at: datetime, actor: str
) -> None:
    """A payment the order could not use, owed back by refund `refund_id`: a liability
    (REFUNDS_PAYABLE) until the refund is paid. Once per refund."""
    transaction_id = await _open(session, f"unusable-payment:{refund_id}", Kind.UNUSABLE_PAYMENT, at, actor)
    if transaction_id is not None:
        session.add_all(_entries(
            transaction_id, Kind.UNUSABLE_PAYMENT, ledger.unusable_payment(amount), at,
            channel_id=order.channel_id, order_id=order.id,
        ))


async def post_top_up(session: AsyncSession, channel_id: int, amount: Money, reference: str, at: datetime, actor: str) -> bool:
    transaction_id = await _open(session, f"top-up:{channel_id}:{reference}", Kind.TOP_UP, at, actor)
    if transaction_id is None:
        return False
    session.add_all(_entries(transaction_id, Kind.TOP_UP, ledger.top_up(amount), at, channel_id=channel_id))
    return True


async def post_supplier_deposit(
    session: AsyncSession, supplier_id: int, amount: Money, reference: str, at: datetime, actor: str
) -> bool:
    """Record money paid to a supplier in advance; the same reference twice records it once."""
    transaction_id = await _open(session, f"supplier-deposit:{supplier_id}:{reference}", Kind.SUPPLIER_DEPOSIT, at, actor)
    if transaction_id is None:
        return False
    session.add_all(_entries(transaction_id, Kind.SUPPLIER_DEPOSIT, ledger.supplier_deposit(amount), at, supplier_id=supplier_id))
    await session.flush()
    return True


async def account_sum(
    session: AsyncSession, account: Account, *, channel_id: int | None = None, supplier_id: int | None = None
) -> int:
    """The sum of an account's entries in fen (debit positive)."""
    query = select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(LedgerEntry.account == account)
    if channel_id is not None:
        query = query.where(LedgerEntry.channel_id == channel_id)
    if supplier_id is not None:
        query = query.where(LedgerEntry.supplier_id == supplier_id)
    return int(await session.scalar(query) or 0)


async def supplier_balance(session: AsyncSession, supplier_id: int) -> int:
    """Deposits made to a supplier less the cost of what it delivered, in fen."""
    return ledger.NORMAL_SIGN[Account.SUPPLIER] * await account_sum(session, Account.SUPPLIER, supplier_id=supplier_id)


async def prepaid_balance(session: AsyncSession, channel_id: int) -> int:
    """A channel's prepaid balance from its entries, in fen."""
    return ledger.NORMAL_SIGN[Account.PREPAID] * await account_sum(session, Account.PREPAID, channel_id=channel_id)
