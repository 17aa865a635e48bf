"""Warming every gateway process a few seconds before a sale starts.

The first second of a sale must be as fast as the tenth. Cold, the first orders would each
pay for what later orders find ready: the registered buyers read into memory, the risk
rules, connections to the database opened, and the placement's statements compiled by
SQLAlchemy and prepared by asyncpg on each connection (prepared statements live per
connection), and whatever per-process caches the placement reads through.

The schedule enqueued a durable job (services/sales/schedule.py) due `warm_seconds` before
the start. Whichever process's worker runs it publishes `sales.warm` on the broker, and every
process, that one included, warms itself: it reads the sale and its registered buyers into
its book, rehearses the placement's read phase (services/orders/draft.py, which writes nothing
and counts nothing) on as many pooled connections at once as a rush would use, and on
PostgreSQL opens the connections the placement's writes take (services/core/driver.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from broker import Broker, MessagesLost
from domain.orders import LineRequest
from models import Channel, SaleEvent
from services.core.database import Database
from services.core.worker import Handler, JobRun
from services.orders.draft import Buyer, PlaceOrder, draft
from services.orders.terms import Terms
from services.risk.check import RiskCheck
from services.sales.book import SALES_WARM, SaleBook, sale_of
from services.sales.schedule import WARM

log = logging.getLogger("quanyi.sales")

REHEARSALS = 16  # connections warmed at most: a process's pool serves a rush with about this many


class SaleWarmer:
    def __init__(
        self, db: Database, broker: Broker, book: SaleBook, risk: RiskCheck | None = None, terms: Terms | None = None,
    ) -> None:
        self._db, self._broker, self._book, self._risk = db, broker, book, risk
        self._terms = terms  # the process's copy of the order terms, read into memory by the rehearsal
        self.warmed: list[int] = []  # sales this process warmed, in order (for operators and tests)
        # One warm-up at a time: sales starting together would otherwise each hold part of the
        # pools while waiting for the rest.
        self._warming = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def handlers(self) -> dict[str, Handler]:
        return {WARM: self.announce}

    async def announce(self, run: JobRun) -> None:
        """The job: tell every process to warm for the sale, unless it was cancelled meanwhile."""
        sale_id = int(run.job.payload.get("sale", 0))  # type: ignore[call-overload]
        async with run.uow() as uow:
            cancelled = await uow.session.scalar(select(SaleEvent.cancelled_at).where(SaleEvent.id == sale_id))
            if cancelled is None:
                uow.publish(SALES_WARM, str(sale_id).encode())
            await run.done(uow, datetime.now(UTC))

    async def follow(self) -> None:
        while True:
            try:
                async with self._broker.subscribe(SALES_WARM) as messages:
                    async for message in messages:
                        with contextlib.suppress(ValueError):
                            # Not awaited inline: a warm-up must not hold up the next message.
                            task = asyncio.create_task(self.warm(int(message)), name=f"sale-warm-{int(message)}")
                            self._tasks.add(task)
                            task.add_done_callback(self._tasks.discard)
            except asyncio.CancelledError:
                raise
            except MessagesLost:
                continue  # a warm-up missed only makes the first orders of a sale read what it would have
            except Exception:
                log.exception("lost the sale warm-up subscription; subscribing again")
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        """Stop warm-ups under way (the process is stopping): their sessions close as they end."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def warm(self, sale_id: int) -> None:
        async with self._warming:
            await self._warm(sale_id)

    async def _warm(self, sale_id: int) -> None:
        try:
            async with self._db.fresh_sessions() as session:
                found = (
                    await session.execute(
                        select(SaleEvent, Channel.code).join(Channel, Channel.id == SaleEvent.channel_id)
                        .where(SaleEvent.id == sale_id)
                    )
                ).first()
                if found is None or found[0].cancelled_at is not None:
                    return
                row, channel = found
                sale = sale_of(row)
                self._book.forget()  # read again: the sale as it is now
                await self._book.sales(session)
                if sale.needs_registration:
                    await self._book.registered(session, sale)
                if self._risk is not None:
                    await self._risk.book.rules(session)
            wanted = self._connections()
            rehearsed = await asyncio.gather(*(self._rehearse(channel, sale.sku_id) for _ in range(wanted)),
                                             return_exceptions=True)
            connections = sum(1 for outcome in rehearsed if not isinstance(outcome, BaseException))
            if self._db.driver is not None:  # PostgreSQL: the placement's own connections too
                connections += await self._db.driver.warm(REHEARSALS)
                wanted += min(REHEARSALS, self._db.driver.size)
            self.warmed.append(sale_id)
            log.info("warmed for sale %s of SKU %s on %s", sale_id, sale.sku_id, channel)
            if connections < wanted:
                # Typically the database refusing connections (too many clients): the rush meets it too.
                failed = next((repr(o) for o in rehearsed if isinstance(o, BaseException)), "connections refused")
                log.warning("warmed for sale %s on %d of %d connections: %s", sale_id, connections, wanted, failed)
        except Exception:
            log.exception("could not warm for sale %s; its first orders read what they need themselves", sale_id)

    def _connections(self) -> int:
        size = getattr(self._db.engine.pool, "size", None)
        return max(1, min(REHEARSALS, size() if callable(size) else 1))

    async def _rehearse(self, channel: str, sku_id: int) -> None:
        """The placement's reads of one order of the SKU, on a connection of its own."""
        command = PlaceOrder(
            channel=channel, idempotency_key=f"sale-warm-{uuid.uuid4().hex}",
            lines=[LineRequest(sku_id, 1)], buyer=Buyer(phone="13800000000"),
        )
        async with self._db.fresh_sessions() as session:
            # No risk check (it counts attempts) and no sale check (it refuses before the start).
            await draft(session, command, datetime.now(UTC), None, terms=self._terms)
