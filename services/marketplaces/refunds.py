"""Refunds a buyer asked for on the marketplace, pulled or pushed, each honoured once.

Before delivery a refund is honoured at once: the order, still PAID (its fulfilment not
begun), becomes REFUNDED and its reserved stock goes back; its fulfilment job then finds
nothing to do, and no delivery is ever reported. Once fulfilment has begun (a top-up may
already be on its way) or the order is delivered, the platform's rule for a delivered
order applies: a Refund (REQUESTED, the marketplace's reason, its refund id as reference) is
written on the order for operators to agree to or refuse (services/marketplaces/
refund_decisions.py); nothing is taken back by itself. The marketplace returns the buyer's
money either way; our side hands nothing to a payment provider.

Once per refund: the trade's record is locked while a refund is taken, and the Refund's key
(`marketplace:<channel id>:<refund id>`) is unique, so a refund pulled and pushed, or a push
replayed, is one request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from broker import Broker
from domain.orders import OrderStatus
from marketplaces.base import MarketRefund
from models import MarketplaceOrder, Order, OrderLine, Refund
from services.core.database import Database, rows_changed
from services.core.events import stock_event
from services.core.unit_of_work import UnitOfWork
from services.inventory import quotas
from services.inventory.reservation import release
from services.marketplaces.connections import Connection
from services.marketplace_events.states import CANCELLED, CLOSED, IMPORTED, REFUNDED, REQUESTED
from services.orders import tallies
from services.orders.events import move
from services.orders.lifecycle import announce

log = logging.getLogger("quanyi.marketplaces")

# The marketplace's statuses of a refund it will not make: nothing to honour.
_NOT_MADE = frozenset({"CLOSED", "SELLER_REFUSE_BUYER"})


def _now() -> datetime:
    return datetime.now(UTC)


class RefundDesk:
    def __init__(self, db: Database, broker: Broker, clock: Callable[[], datetime] = _now,
                 on_event: Callable[[str, bytes], None] | None = None) -> None:
        self._db, self._broker, self._clock, self._on_event = db, broker, clock, on_event

    async def honour(self, connection: Connection, refund: MarketRefund) -> str | None:
        """How the refund was taken (REFUNDED, REQUESTED, CLOSED), or None when there was
        nothing to do (an unknown trade, a refund seen before, one the marketplace will not make)."""
        if refund.status in _NOT_MADE:
            return await self._closed(connection, refund)
        async with UnitOfWork(self._db, self._broker, self._on_event) as uow:
            session = uow.session
            record = await session.scalar(
                select(MarketplaceOrder).where(MarketplaceOrder.channel_id == connection.channel_id,
                                               MarketplaceOrder.tid == refund.tid)
                .with_for_update().execution_options(populate_existing=True)
            )
            if record is None or record.refund_id == refund.refund_id:
                return None
            now = self._clock()
            taken = REQUESTED
            if record.status == IMPORTED and record.order_id is not None:
                order = await session.scalar(select(Order).where(Order.id == record.order_id).with_for_update()
                                             .execution_options(populate_existing=True))
                if order is not None and order.status is OrderStatus.PAID and await move(
                    session, order, OrderStatus.REFUNDED, actor=f"marketplace:{connection.channel}",
                    reason=f"refunded on the marketplace ({refund.refund_id})", at=now,
                ):
                    await _give_back(uow, order, now)
                    announce(uow, order, OrderStatus.PAID, now)
                    taken = REFUNDED
                elif order is not None:
                    await _request(session, connection, order, refund, now)
            elif record.status != IMPORTED:
                taken = REFUNDED  # never became an order of ours: nothing to give back
            values: dict[str, object] = {"refund_id": refund.refund_id[:64], "refund_status": taken, "updated_at": now,
                                         "refund_report_status": None, "refund_report_attempts": 0,
                                         "refund_report_error": None}
            if taken == REFUNDED and record.status == IMPORTED:
                values["status"] = CANCELLED
            await session.execute(update(MarketplaceOrder).where(MarketplaceOrder.id == record.id).values(**values)
                                  .execution_options(synchronize_session=False))
        log.info("marketplace %s refund %s of trade %s: %s", connection.channel, refund.refund_id, refund.tid, taken)
        return taken


    async def _closed(self, connection: Connection, refund: MarketRefund) -> str | None:
        """A refund closed on the marketplace (the buyer withdrew it, or the seller refused it
        there) while its request waits here: the request is CLOSED, no operator can agree to
        it any more. Nothing for a refund decided here already or never requested."""
        async with UnitOfWork(self._db, self._broker, self._on_event) as uow:
            closed = await uow.session.execute(
                update(Refund).where(Refund.key == refund_key(connection.channel_id, refund.refund_id),
                                     Refund.status == REQUESTED)
                .values(status=CLOSED).execution_options(synchronize_session=False))
            if rows_changed(closed) != 1:
                return None
            await uow.session.execute(
                update(MarketplaceOrder).where(MarketplaceOrder.channel_id == connection.channel_id,
                                               MarketplaceOrder.tid == refund.tid,
                                               MarketplaceOrder.refund_id == refund.refund_id[:64])
                .values(refund_status=CLOSED, updated_at=self._clock()).execution_options(synchronize_session=False))
        log.info("marketplace %s refund %s of trade %s: closed there", connection.channel, refund.refund_id, refund.tid)
        return CLOSED


def refund_key(channel_id: int, refund_id: str) -> str:
    return f"marketplace:{channel_id}:{refund_id}"


async def _request(session: AsyncSession, connection: Connection, order: Order, refund: MarketRefund,
                   now: datetime) -> None:
    """The refund of a delivered (or delivering) order as a Refund on it, REQUESTED, once.
    It asks no more than the order's total."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        insert(Refund).values(
            key=refund_key(connection.channel_id, refund.refund_id), order_id=order.id, line_ids="",
            amount_fen=min(refund.amount.minor, order.total_fen), currency=order.currency,
            reason=(refund.reason or "refund asked on the marketplace")[:500], reference=refund.refund_id[:128],
            status=REQUESTED, created_at=now,
        ).on_conflict_do_nothing(index_elements=[Refund.key])
    )


async def _give_back(uow: UnitOfWork, order: Order, now: datetime) -> None:
    """A paid order that will not be fulfilled: its quotas, its stock and its buyers' counts back."""
    session = uow.session
    line_ids = sorted(await session.scalars(select(OrderLine.id).where(OrderLine.order_id == order.id)))
    skus = set(await session.scalars(select(OrderLine.sku_id).where(OrderLine.order_id == order.id)))
    await tallies.release(session, order)
    moved = await quotas.release(session, line_ids, now)
    changed = set(await release(session, line_ids)) | set(moved) | skus
    stock_event(uow, changed, by_orders=True)
