"""A statement's figures, aggregated by the database: totals, lines, per-order amounts.

A DRAFT reads the party's entries of the period that no confirmed statement claimed; a
CONFIRMED or PAID statement reads exactly the entries it claimed when it was confirmed.
Nothing here loads entries into Python: every figure is a SUM ... GROUP BY.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.ledger import SETTLED_KINDS, Account, Kind
from domain.settlement import Party, StatementStatus, net_of
from models import LedgerEntry, Order, OrderLine, SettlementStatement, Sku

E = LedgerEntry


def claim_column(party: Party) -> Any:
    return E.channel_statement_id if party is Party.CHANNEL else E.supplier_statement_id


def party_column(party: Party) -> Any:
    return E.channel_id if party is Party.CHANNEL else E.supplier_id


def unclaimed(statement: SettlementStatement) -> list[ColumnElement[bool]]:
    """The entries a draft of this party and period would settle."""
    return [
        party_column(statement.party) == statement.party_id,
        E.kind.in_(SETTLED_KINDS),
        E.currency == statement.currency,  # a supplier's statement is in one currency
        claim_column(statement.party).is_(None),
        E.at >= statement.period_start,
        E.at < statement.period_end,
    ]


def entries_of(statement: SettlementStatement) -> list[ColumnElement[bool]]:
    if statement.status is StatementStatus.DRAFT:
        return unclaimed(statement)
    return [claim_column(statement.party) == statement.id]


def _sum(account: Account, kind: Kind | None = None, sign: int = 1) -> Any:
    # SUM ... FILTER (WHERE ...): both backends skip the other rows without a CASE per row.
    condition = E.account == account if kind is None else and_(E.account == account, E.kind == kind)
    total = func.sum(E.amount_fen).filter(condition)
    return func.coalesce(total if sign > 0 else -total, 0)


def discount_column() -> Any:
    """What coupons took off the buyers' payments: the delivery's negative channel entry
    (domain/ledger.delivery_with_discount), less what refunds gave back of it."""
    taken = and_(E.account == Account.CHANNEL, E.amount_fen < 0, E.kind == Kind.DELIVERY)
    returned = and_(E.account == Account.CHANNEL, E.amount_fen > 0, E.kind == Kind.REFUND)
    return func.coalesce(-func.sum(E.amount_fen).filter(taken), 0) - func.coalesce(func.sum(E.amount_fen).filter(returned), 0)


def figures_columns() -> list[Any]:
    """gross, cost, commission, margin (of deliveries), refunds, and the account sums for net."""
    return [
        _sum(Account.CHANNEL, Kind.DELIVERY),
        _sum(Account.SUPPLIER, Kind.DELIVERY, -1),
        _sum(Account.COMMISSION, Kind.DELIVERY, -1),
        _sum(Account.MARGIN, Kind.DELIVERY, -1),
        _sum(Account.CHANNEL, Kind.REFUND, -1),
        _sum(Account.SUPPLIER, Kind.REFUND),  # refunded cost
    ]


def prepaid_column(statement: SettlementStatement) -> Any:
    """What the channel paid in advance from its prepaid balance for the statement's lines:
    the gross of its delivered lines less the refunds of lines of orders it paid from the
    balance (a refund puts that money back on the balance). Suppliers prepay nothing."""
    if statement.party is not Party.CHANNEL:
        return literal(0)
    payment = aliased(LedgerEntry)
    paid_from_balance = select(payment.order_id).where(
        payment.channel_id == statement.party_id, payment.kind == Kind.PREPAID_PAYMENT, payment.account == Account.PREPAID,
    )
    prepaid = and_(E.account == Account.CHANNEL, E.order_id.in_(paid_from_balance))
    return func.coalesce(func.sum(E.amount_fen).filter(prepaid), 0)


@dataclass(frozen=True, slots=True)
class Sums:
    gross: int
    cost: int
    commission: int
    margin: int
    refunds: int
    refunded_cost: int
    refunded_commission: int
    prepaid: int
    order_count: int
    discount: int = 0  # what coupons took off the buyers' payments, less what refunds gave back

    def net(self, party: Party) -> int:
        channel = self.gross - self.refunds
        commission = -(self.commission - self.refunded_commission)
        supplier = -(self.cost - self.refunded_cost)
        return net_of(party, channel, commission, supplier, self.prepaid)


async def totals(session: AsyncSession, statement: SettlementStatement) -> Sums:
    """One statement, one pass over the statement's entries."""
    row = (
        await session.execute(
            select(
                *figures_columns(),
                _sum(Account.COMMISSION, Kind.REFUND),
                prepaid_column(statement),
                func.count(func.distinct(E.order_id)).filter(E.kind == Kind.DELIVERY),
                discount_column(),
            ).where(*entries_of(statement))
        )
    ).one()
    return Sums(*(int(v) for v in row))


def store(statement: SettlementStatement, sums: Sums) -> None:
    statement.gross_fen, statement.cost_fen = sums.gross, sums.cost
    statement.commission_fen, statement.margin_fen = sums.commission, sums.margin
    statement.refunds_fen, statement.prepaid_fen = sums.refunds, sums.prepaid
    statement.discount_fen = sums.discount
    statement.net_fen = sums.net(statement.party)
    statement.order_count = sums.order_count


@dataclass(frozen=True, slots=True)
class Line:
    """One order line of a statement; `refunded` is the gross refunded."""

    line_id: int
    order_number: str
    external_order_number: str
    sku_code: str
    quantity: int
    gross: int
    cost: int
    commission: int
    margin: int
    refunded: int
    discount: int = 0  # what the order's coupon took off the line (the channel collected gross)


async def lines(session: AsyncSession, statement: SettlementStatement, *, after: int | None, limit: int) -> list[Line]:
    """Lines in order-line order from after `after`; the page is grouped in the database."""
    where = entries_of(statement)
    if after is not None:
        where.append(E.line_id > after)
    gross, cost, commission, margin, refunded, _ = figures_columns()
    per_line = (
        select(E.line_id.label("line_id"), gross.label("gross"), cost.label("cost"), commission.label("commission"),
               margin.label("margin"), refunded.label("refunded"), discount_column().label("discount"))
        .where(*where, E.line_id.is_not(None))
        .group_by(E.line_id)
        .order_by(E.line_id)
        .limit(limit)
        .subquery()
    )
    query = (
        select(per_line, Order.number, Order.idempotency_key, Sku.code, OrderLine.quantity)
        .join(OrderLine, OrderLine.id == per_line.c.line_id)
        .join(Order, Order.id == OrderLine.order_id)
        .join(Sku, Sku.id == OrderLine.sku_id)
        .order_by(per_line.c.line_id)
    )
    return [
        Line(line_id, number, key, sku, quantity, int(g), int(c), int(k), int(m), int(r), int(d))
        for line_id, g, c, k, m, r, d, number, key, sku, quantity in await session.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class OrderAmount:
    number: str  # as the other side knows it: a channel's external number, a supplier our number
    amount: int
    refunded_all: bool


async def order_amounts(session: AsyncSession, statement: SettlementStatement) -> list[OrderAmount]:
    """Per order of the statement: what changes hands for it (a channel: gross less refunds;
    a supplier: cost less refunded cost), and whether it was refunded in full."""
    if statement.party is Party.CHANNEL:
        paid, back = _sum(Account.CHANNEL, Kind.DELIVERY), _sum(Account.CHANNEL, Kind.REFUND, -1)
        number = Order.idempotency_key
    else:
        paid, back = _sum(Account.SUPPLIER, Kind.DELIVERY, -1), _sum(Account.SUPPLIER, Kind.REFUND)
        number = Order.number
    per_order = (
        select(E.order_id.label("order_id"), paid.label("paid"), back.label("back"))
        .where(*entries_of(statement), E.order_id.is_not(None))
        .group_by(E.order_id)
        .subquery()
    )
    rows = await session.execute(
        select(number, per_order.c.paid, per_order.c.back).join(per_order, per_order.c.order_id == Order.id)
    )
    return [OrderAmount(n, int(p) - int(b), 0 < int(b) >= int(p)) for n, p, b in rows]
