"""Delivered orders for settlement tests, made the way fulfilment will make them.

Orders are placed and paid through the order services, moved to FULFILLING and
DELIVERED with `move`, and each line posted with `post_delivery`, in one transaction,
as fulfilment does; a refund moves the order to REFUNDED and posts `post_refund`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from broker.memory import MemoryBroker
from domain.access import Principal, Role
from domain.ledger import Account
from domain.orders import LineRequest, OrderStatus
from models import (
    Channel,
    ChannelKind,
    LedgerEntry,
    Order,
    OrderLine,
    PrepaidAccount,
    SettlementCycle,
    Sku,
)
from services.access.keys import issue_key
from services.core.database import Database
from services.core.unit_of_work import UnitOfWork
from services.fulfilment import hooks
from services.orders import lifecycle, placing
from services.orders.events import move
from services.settlement import ledger, prepaid
from tests.e2e.shop import StockedSku
from tests.services import catalog_rows as rows

OPERATOR = Principal(role=Role.ADMIN, key_prefix="test")


@dataclass(frozen=True)
class Partner:
    channel: str
    key: str
    channel_id: int


@dataclass(frozen=True)
class Delivered:
    order_id: int
    number: str
    external: str  # the partner's order number: the idempotency key
    line_ids: list[int]


async def new_partner(db: Database, *, kind: ChannelKind = ChannelKind.MARKETPLACE, commission_bp: int = 500,
                      cycle: SettlementCycle = SettlementCycle.MONTHLY, time_zone: str = "Asia/Shanghai") -> Partner:
    """A channel of its own with a partner key, so a test knows its figures exactly."""
    code = f"ch-{uuid.uuid4().hex[:8]}"
    async with db.sessions() as session, session.begin():
        row = Channel(code=code, name="结算测试渠道", kind=kind, commission_bp=commission_bp, settlement_cycle=cycle,
                      settlement_time_zone=time_zone, public=False)
        session.add(row)
        await session.flush()
        await rows.list_all_on(session, row.id)
        issued = await issue_key(session, role=Role.PARTNER, channel=code, name="settlement test partner")
    return Partner(code, issued.plaintext, row.id)


def _uow(db: Database) -> UnitOfWork:
    return UnitOfWork(db, MemoryBroker())


async def paid_order(db: Database, channel: str, *lines: tuple[StockedSku, int], at: datetime,
                     external: str | None = None, from_balance: bool = False, coupon: str | None = None) -> Delivered:
    external = external or f"EXT-{uuid.uuid4().hex[:12]}"
    command = placing.PlaceOrder(
        channel=channel, idempotency_key=external,
        lines=[LineRequest(sku.pk, quantity) for sku, quantity in lines],
        buyer=placing.Buyer(email="buyer@example.com", recharge_account="player-1"), coupon_code=coupon,
    )
    async with _uow(db) as uow:
        placed = await placing.place_order(uow, command, OPERATOR, now=at, ttl=timedelta(minutes=30))
        order = placed.order
        assert order is not None, placed.refusals
        if from_balance:
            outcome = await prepaid.pay_from_balance(uow, order, actor="test", now=at)
        else:
            outcome = await lifecycle.pay(uow, order, f"pay-{external}", actor="test", now=at)
        assert outcome.error_code is None, outcome.message
        line_ids = list(await uow.session.scalars(select(OrderLine.id).where(OrderLine.order_id == order.id).order_by(OrderLine.id)))
    return Delivered(order.id, order.number, external, line_ids)


async def deliver(db: Database, order: Delivered, *, at: datetime, supplier_id: int | None = None) -> None:
    async with _uow(db) as uow:
        row = await uow.session.get_one(Order, order.order_id)
        assert await move(uow.session, row, OrderStatus.FULFILLING, actor="test", reason="fulfilling", at=at)
        assert await move(uow.session, row, OrderStatus.DELIVERED, actor="test", reason="delivered", at=at)
        for line_id in order.line_ids:
            await ledger.post_delivery(uow.session, line_id, supplier_id=supplier_id, at=at)


async def delivered_order(db: Database, channel: str, *lines: tuple[StockedSku, int], at: datetime,
                          external: str | None = None, supplier_id: int | None = None,
                          from_balance: bool = False, coupon: str | None = None) -> Delivered:
    order = await paid_order(db, channel, *lines, at=at, external=external, from_balance=from_balance, coupon=coupon)
    await deliver(db, order, at=at, supplier_id=supplier_id)
    return order


async def refund(db: Database, order: Delivered, *, at: datetime) -> None:
    async with _uow(db) as uow:
        row = await uow.session.get_one(Order, order.order_id)
        assert await move(uow.session, row, OrderStatus.REFUNDED, actor="test", reason="refunded", at=at)
        for line_id in order.line_ids:
            await hooks.line_refunded(uow.session, line_id, at)


async def unbalanced_transactions(db: Database) -> list[int]:
    """Ids of ledger transactions whose entries do not sum to zero: always none."""
    async with db.sessions() as session:
        return list(await session.scalars(
            select(LedgerEntry.transaction_id).group_by(LedgerEntry.transaction_id)
            .having(func.sum(LedgerEntry.amount_fen) != 0)
        ))


async def prepaid_books(db: Database, channel_id: int) -> tuple[int, int, int]:
    """(cached balance, minus the sum of PREPAID entries, sum of movements) in fen."""
    async with db.sessions() as session:
        cached = await session.scalar(select(PrepaidAccount.balance_fen).where(PrepaidAccount.channel_id == channel_id)) or 0
        from_entries = await ledger.prepaid_balance(session, channel_id)
        movements = await prepaid.movements_total(session, channel_id)
    return cached, from_entries, movements


async def account_sum(db: Database, account: Account, **party: int) -> int:
    async with db.sessions() as session:
        return await ledger.account_sum(session, account, **party)


async def supplier_of(db: Database, name: str, *skus: StockedSku) -> str:
    """A new supplier, first in line for the given SKUs; its code."""
    async with db.sessions() as session, session.begin():
        supplier = await rows.supplier(session, name)
        for sku in skus:
            rows.supplies(session, await session.get_one(Sku, sku.pk), supplier, 1)
    return supplier.code
