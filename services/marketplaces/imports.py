"""Taking a marketplace trade: one order of the marketplace's channel, paid, once.

Pulled and pushed trades come here alike. The trade's record (MarketplaceOrder, unique by
channel and trade number) is claimed first, in a transaction of its own: a trade seen
before is counted and left alone, whatever it became (imported, failed, cancelled). Then:

1. its lines' outer ids are mapped to our SKUs (the connection's map, else the outer id is
   our SKU code); an unknown one fails the import;
2. the order is placed on the channel with the trade number as its idempotency key, priced
   on the server and its stock reserved, as any partner's order (no risk check: the
   marketplace screened the buyer and holds the money); a refusal (out of stock, a SKU not
   on sale there, a recharge account of the wrong form) fails the import;
3. a marketplace price below ours fails it too, the order cancelled and its stock released;
4. the order is paid (the marketplace collected the money; the reference is
   `<channel>:<trade number>`), which queues its fulfilment, and the record marked
   IMPORTED, in one transaction.

A failed import is recorded with its reason for operators (`marketplaceTrades`) and never
retried by itself; an operator retries it with `retryMarketplaceImport` (services/
marketplaces/import_retry.py), which reads the trade again and runs these steps once more. A trade pushed and pulled at once is imported by whichever claimed it
first; the other counts it and leaves it. A crash between the steps leaves the record
RECEIVED: once it has stalled for STALLED, the next pull of the trade takes it over (one
taker only), and each step finds what the last one did (the order by its key, the payment
by its reference).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from broker import Broker
from domain.access import Principal, Role
from domain.orders import LineRequest
from marketplaces.base import PAID, Trade
from models import MarketplaceOrder, Order, OrderLine, Sku
from services.core.database import Database, rows_changed
from services.core.events import stock_event
from services.core.unit_of_work import UnitOfWork
from services.marketplace_events.states import FAILED, IMPORTED, RECEIVED
from services.marketplaces.connections import Connection
from services.orders import lifecycle, placing

log = logging.getLogger("quanyi.marketplaces")

PULL, PUSH = "PULL", "PUSH"
HOLD = timedelta(minutes=30)  # how long a placed order waits for its payment step
STALLED = timedelta(minutes=2)  # an import not finished by then stopped midway: another may take it over


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Taken:
    record_id: int
    status: str
    order_id: int | None = None
    duplicate: bool = False
    reason: str | None = None


class Importer:
    def __init__(self, db: Database, broker: Broker, clock: Callable[[], datetime] = _now,
                 on_event: Callable[[str, bytes], None] | None = None) -> None:
        self._db, self._broker, self._clock, self._on_event = db, broker, clock, on_event

    def _uow(self) -> UnitOfWork:
        return UnitOfWork(self._db, self._broker, self._on_event)

    async def take(self, connection: Connection, trade: Trade, source: str) -> Taken | None:
        """Import one trade; None for a trade that is not paid and waiting for delivery."""
        if trade.status != PAID or not trade.tid:
            return None
        claimed = await self._claim(connection, trade, source)
        if claimed.status != RECEIVED or claimed.duplicate:
            return claimed
        return await self._import(connection, trade, claimed.record_id)

    async def retake(self, connection: Connection, trade: Trade, record_id: int) -> Taken | None:
        """Import again a trade whose import FAILED (an operator's retry): taken from FAILED
        back to RECEIVED by one taker only; None when it was not FAILED (or another took it)."""
        if trade.status != PAID:
            return None
        async with self._uow() as uow:
            took = await uow.session.execute(
                update(MarketplaceOrder)
                .where(MarketplaceOrder.id == record_id, MarketplaceOrder.status == FAILED,
                       MarketplaceOrder.order_id.is_(None))
                .values(status=RECEIVED, reason=None, updated_at=self._clock())
                .execution_options(synchronize_session=False))
            if rows_changed(took) != 1:
                return None
        log.info("marketplace %s trade %s: import retried", connection.channel, trade.tid)
        return await self._import(connection, trade, record_id)

    async def _import(self, connection: Connection, trade: Trade, record_id: int) -> Taken:
        """Steps 1 to 4 of the module's story, for a record this taker holds RECEIVED."""
        skus = await self._skus(connection, trade)
        if isinstance(skus, str):
            return await self._fail(record_id, "UNKNOWN_OUTER_ID", skus)
        actor = f"marketplace:{connection.channel}"
        command = placing.PlaceOrder(
            channel=connection.channel, idempotency_key=trade.tid,
            lines=[LineRequest(sku_id, line.quantity) for sku_id, line in zip(skus, trade.lines, strict=True)],
            buyer=placing.Buyer(phone=trade.buyer_phone, recharge_account=trade.recharge_account),
        )
        principal = Principal(role=Role.PARTNER, channel=connection.channel, key_prefix="marketplace")
        now = self._clock()
        async with self._uow() as uow:
            placed = await placing.place_order(uow, command, principal, now=now, ttl=HOLD)
            if placed.created and placed.order is not None:
                lifecycle.announce(uow, placed.order, None, now)
                stock_event(uow, placed.changed_skus, by_orders=True)
        if placed.order is None:
            refusal = placed.refusals[0]
            return await self._fail(record_id, refusal.code, refusal.message)
        order_id = placed.order.id
        async with self._uow() as uow:
            order = await uow.session.scalar(select(Order).where(Order.id == order_id).with_for_update()
                                             .execution_options(populate_existing=True))
            assert order is not None
            cheaper = await _cheaper_than_ours(uow, order, trade, skus)
            if cheaper is not None:
                await lifecycle.cancel(uow, order, actor=actor, now=now, reason="marketplace price below ours")
                why = f"the marketplace sold {cheaper} below our channel price"
                await self._mark(uow, record_id, FAILED, order_id, "PRICE_BELOW_CHANNEL_PRICE: " + why)
                return Taken(record_id, FAILED, order_id, reason=why)
            paid = await lifecycle.pay(uow, order, f"{connection.channel}:{trade.tid}", actor=actor, now=now)
            if paid.error_code is not None:
                await uow.rollback()
                return await self._fail(record_id, paid.error_code, paid.message)
            await self._mark(uow, record_id, IMPORTED, order_id, None)
        log.info("marketplace %s trade %s imported as order %s", connection.channel, trade.tid, order.number)
        return Taken(record_id, IMPORTED, order_id)

    async def _claim(self, connection: Connection, trade: Trade, source: str) -> Taken:
        now = self._clock()
        lines = [{"outerId": line.outer_id, "quantity": line.quantity, "price": str(line.price.amount)}
                 for line in trade.lines]
        async with self._uow() as uow:
            session = uow.session
            insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
            created = (await session.execute(
                insert(MarketplaceOrder).values(
                    channel_id=connection.channel_id, tid=trade.tid, status=RECEIVED, source=source, seen=1,
                    lines=lines, paid_fen=trade.payment.minor, report_attempts=0, created_at=now, updated_at=now,
                ).on_conflict_do_nothing(index_elements=["channel_id", "tid"]).returning(MarketplaceOrder.id)
            )).scalar_one_or_none()
            if created is not None:
                return Taken(created, RECEIVED)
            # Seen before: counted, and taken up again only if an import of it stopped midway.
            row = (await session.execute(
                update(MarketplaceOrder)
                .where(MarketplaceOrder.channel_id == connection.channel_id, MarketplaceOrder.tid == trade.tid)
                .values(seen=MarketplaceOrder.seen + 1)
                .returning(MarketplaceOrder.id, MarketplaceOrder.status, MarketplaceOrder.order_id,
                           MarketplaceOrder.updated_at)
            )).one()
            if row.status != RECEIVED or row.updated_at > now - STALLED:
                # Done, or being imported right now (a push and a pull of it at once): left to that import.
                return Taken(row.id, row.status, row.order_id, duplicate=True)
            # An import that stopped midway (its process died): taken over by one taker only.
            took = await session.execute(
                update(MarketplaceOrder)
                .where(MarketplaceOrder.id == row.id, MarketplaceOrder.status == RECEIVED,
                       MarketplaceOrder.updated_at == row.updated_at)
                .values(updated_at=now).execution_options(synchronize_session=False)
            )
        return Taken(row.id, RECEIVED, row.order_id, duplicate=rows_changed(took) != 1)

    async def _skus(self, connection: Connection, trade: Trade) -> list[int] | str:
        """Our SKU id for each line, or why a line has none."""
        codes = [connection.outer_ids.get(line.outer_id or "", line.outer_id or "") for line in trade.lines]
        async with self._db.fresh_sessions() as session:
            found = {code: sku_id for code, sku_id in await session.execute(select(Sku.code, Sku.id).where(Sku.code.in_(set(codes))))}
        for line, code in zip(trade.lines, codes, strict=True):
            if code not in found:
                return f"no SKU for outer id {line.outer_id!r} (item {line.item_id})"
        return [found[code] for code in codes]

    async def _fail(self, record_id: int, code: str, message: str) -> Taken:
        async with self._uow() as uow:
            await self._mark(uow, record_id, FAILED, None, f"{code}: {message}")
        log.warning("marketplace trade record %d not imported: %s", record_id, code)
        return Taken(record_id, FAILED, reason=message)

    async def _mark(self, uow: UnitOfWork, record_id: int, status: str, order_id: int | None, reason: str | None) -> None:
        await uow.session.execute(
            update(MarketplaceOrder).where(MarketplaceOrder.id == record_id, MarketplaceOrder.status == RECEIVED)
            .values(status=status, order_id=order_id, reason=reason[:300] if reason else None, updated_at=self._clock())
            .execution_options(synchronize_session=False)
        )


async def _cheaper_than_ours(uow: UnitOfWork, order: Order, trade: Trade, skus: list[int]) -> str | None:
    """The first SKU the marketplace sold below our unit price on the channel, if any."""
    ours = {line.sku_id: line.unit_price_fen for line in await uow.session.scalars(
        select(OrderLine).where(OrderLine.order_id == order.id))}
    for sku_id, line in zip(skus, trade.lines, strict=True):
        if line.price.minor < ours.get(sku_id, 0):
            return line.outer_id or line.item_id
    return None
