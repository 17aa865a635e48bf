"""Prepaid balances of B2B channels: operators top them up, partners pay orders from them.

Every change is one conditional UPDATE of the account plus one BalanceMovement row and
one ledger transaction in the same transaction, so the balance is always the sum of the
channel's movements, and minus the sum of its PREPAID ledger entries (a liability).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.money import Money
from domain.orders import OrderStatus
from models import BalanceMovement, Channel, ChannelKind, Order, OrderLine, PrepaidAccount
from services.core.database import rows_changed
from services.core.unit_of_work import UnitOfWork
from services.orders import lifecycle
from services.settlement import ledger

# Far above any real transfer, far below what a BIGINT of fen can sum.
MAX_TOP_UP_FEN = 10**12


def prepaid_reference(order: Order) -> str:
    """The payment reference of an order paid from its channel's balance."""
    return f"prepaid:{order.number}"


def keeps_balance(channel: Channel) -> bool:
    return channel.kind is ChannelKind.B2B


@dataclass(frozen=True, slots=True)
class TopUp:
    balance: Money | None
    error_code: str | None = None
    message: str = ""


async def top_up(
    uow: UnitOfWork, channel: Channel, amount: Money, reference: str, *, actor: str, now: datetime
) -> TopUp:
    """Credit a B2B channel. The same reference twice credits once."""
    reference = reference.strip()
    if not keeps_balance(channel):
        return TopUp(None, "NOT_PREPAID", "only B2B channels keep a prepaid balance")
    if amount.currency != channel.currency:
        return TopUp(None, "CURRENCY_MISMATCH", f"the channel's balance is in {channel.currency}")
    if not 0 < amount.minor <= MAX_TOP_UP_FEN:
        return TopUp(None, "INVALID_AMOUNT", "a top-up is more than zero and at most 10,000,000,000.00")
    if not 1 <= len(reference) <= 128:
        return TopUp(None, "INVALID_INPUT", "a reference is 1 to 128 characters")
    session = uow.session
    await _open_account(session, channel.id)
    # The row lock queues top-ups of one channel, so the reference check below cannot race.
    await session.execute(select(PrepaidAccount.channel_id).where(PrepaidAccount.channel_id == channel.id).with_for_update())
    reason = f"top-up {reference}"
    credited = await session.scalar(
        select(BalanceMovement.id).where(BalanceMovement.channel_id == channel.id, BalanceMovement.reason == reason)
    )
    if credited is None:
        await session.execute(
            update(PrepaidAccount)
            .where(PrepaidAccount.channel_id == channel.id)
            .values(balance_fen=PrepaidAccount.balance_fen + amount.minor)
        )
        session.add(BalanceMovement(channel_id=channel.id, amount_fen=amount.minor, reason=reason, actor=actor, at=now))
        await ledger.post_top_up(session, channel.id, amount, reference, now, actor)
        await session.flush()
    balance = await balance_of(session, channel.id)
    return TopUp(Money(balance, channel.currency))


async def _open_account(session: AsyncSession, channel_id: int) -> None:
    if await session.get(PrepaidAccount, channel_id) is not None:
        return
    try:
        async with session.begin_nested():
            session.add(PrepaidAccount(channel_id=channel_id, balance_fen=0))
    except IntegrityError:
        pass  # a concurrent first top-up opened it


async def pay_from_balance(uow: UnitOfWork, order: Order, *, actor: str, now: datetime) -> lifecycle.Outcome:
    """Pay `order` (read FOR UPDATE by the caller) from its channel's balance.

    The order is marked paid first and the balance debited after, in one transaction: if
    the debit finds too little money, the whole transaction rolls back and nothing changed.
    Paying again is a no-op: the order is no longer PENDING_PAYMENT, and the unique
    order_id of BalanceMovement would refuse a second debit anyway.
    """
    was_pending = order.status is OrderStatus.PENDING_PAYMENT
    outcome = await lifecycle.pay(uow, order, prepaid_reference(order), actor=actor, now=now)
    if outcome.error_code is not None or not was_pending:
        return outcome  # refused (an expiry found on the way stays), or paid from balance before
    session = uow.session
    # One conditional statement: of two orders that together exceed the balance, one debit fails.
    debited = await session.execute(
        update(PrepaidAccount)
        .where(PrepaidAccount.channel_id == order.channel_id, PrepaidAccount.balance_fen >= order.total_fen)
        .values(balance_fen=PrepaidAccount.balance_fen - order.total_fen)
    )
    if rows_changed(debited) != 1:
        return await _undo(uow, order, "INSUFFICIENT_BALANCE", "the channel's prepaid balance is too low for this order")
    session.add(BalanceMovement(
        channel_id=order.channel_id, order_id=order.id, amount_fen=-order.total_fen,
        reason=f"order {order.number}", actor=actor, at=now,
    ))
    try:
        await ledger.post_prepaid_payment(session, order, now, actor)
        await session.flush()
    except IntegrityError:
        return await _undo(uow, order, "INVALID_STATE", "the order was already paid from the balance")
    return outcome


async def refund_line(session: AsyncSession, line_id: int, *, at: datetime) -> None:
    """Give a refunded line's payment back to the balance it was paid from, once.

    Lines of orders not paid from a balance post nothing here.
    """
    line, order = (
        await session.execute(select(OrderLine, Order).join(Order, Order.id == OrderLine.order_id).where(OrderLine.id == line_id))
    ).one()
    amount = await ledger.post_prepaid_refund(session, line, order, at)
    if amount is None:
        return
    await session.execute(
        update(PrepaidAccount)
        .where(PrepaidAccount.channel_id == order.channel_id)
        .values(balance_fen=PrepaidAccount.balance_fen + amount.minor)
    )
    session.add(BalanceMovement(
        channel_id=order.channel_id, amount_fen=amount.minor, reason=f"refund {order.number} line {line.id}", actor="system", at=at,
    ))
    await session.flush()


async def _undo(uow: UnitOfWork, order: Order, code: str, message: str) -> lifecycle.Outcome:
    await uow.rollback()
    await uow.session.refresh(order)  # the rollback expired it; read what is committed
    return lifecycle.Outcome(order, code, message)


async def balance_of(session: AsyncSession, channel_id: int) -> int:
    return (await session.scalar(select(PrepaidAccount.balance_fen).where(PrepaidAccount.channel_id == channel_id))) or 0


async def movements_total(session: AsyncSession, channel_id: int) -> int:
    """The sum of a channel's movements: equal to its balance at every commit."""
    total = await session.scalar(
        select(func.coalesce(func.sum(BalanceMovement.amount_fen), 0)).where(BalanceMovement.channel_id == channel_id)
    )
    return int(total or 0)
