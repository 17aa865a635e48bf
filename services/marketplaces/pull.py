"""The pull job of a connection: new paid trades and new refunds since its cursors.

One job per connection (services/marketplaces/connections.py), run by one worker at a time
however many processes run, each run queueing the next after the connection's poll
interval. A run pulls the window from the cursor to now (a day at most, as the platforms
allow), every page of it, and takes each trade and refund as it comes (duplicates within
and across pages are the importer's to drop); only when all of it is stored does the
cursor move, in the transaction that ends the run. So a run that fails midway (the
marketplace down, a timeout, a crash) leaves the cursor where it was, and the next run
pulls the same window again: what it already took is found and counted, not taken twice.

The cursor stays OVERLAP behind the window's end, because a trade can reach the platform's
index a little after its modified time: trades near the edge are pulled twice, and dropped
the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from marketplaces.base import MarketplaceAdapter, MarketplaceRefused, MarketplaceUnavailable
from models import MarketplaceConnection
from services.core.worker import Handler, JobRun
from services.marketplaces.connections import PULL, Connection, Markets
from services.marketplaces.imports import PULL as PULLED
from services.marketplaces.imports import Importer
from services.marketplaces.refunds import RefundDesk

log = logging.getLogger("quanyi.marketplaces")

PAGE_SIZE = 50
MAX_WINDOW = timedelta(days=1) - timedelta(seconds=1)
FIRST_WINDOW = timedelta(hours=1)  # a new connection starts this far back
OVERLAP = timedelta(seconds=60)
DISABLED_WAIT = 60.0


def _now() -> datetime:
    return datetime.now(UTC)


class Puller:
    def __init__(self, markets: Markets, importer: Importer, refunds: RefundDesk,
                 clock: Callable[[], datetime] = _now) -> None:
        self._markets, self._importer, self._refunds, self._clock = markets, importer, refunds, clock

    def handlers(self) -> dict[str, Handler]:
        return {PULL: self.pull}

    async def pull(self, run: JobRun) -> None:
        connection_id = int(run.job.payload["connection"])  # type: ignore[call-overload]
        async with run.uow() as uow:
            now = self._clock()
            found = await self._markets.connection(uow.session, connection_id=connection_id)
            row = await uow.session.get(MarketplaceConnection, connection_id)
            if found is None or row is None:
                await run.done(uow, now)  # removed, or no adapter for its kind: nothing to pull
                return
            connection, adapter = found
            if not connection.enabled:
                await run.later(uow, now, DISABLED_WAIT)
                return
            trades_from, refunds_from = row.trades_cursor, row.refunds_cursor
        end = self._clock().replace(microsecond=0) + timedelta(seconds=1)  # the platforms keep whole seconds
        trades_window = _window(trades_from, end)
        refunds_window = _window(refunds_from, end)
        error: str | None = None
        try:
            await self._trades(connection, adapter, *trades_window)
            await self._refund_pages(connection, adapter, *refunds_window)
        except (MarketplaceUnavailable, MarketplaceRefused) as failure:
            error = str(failure)[:300]
            log.warning("marketplace %s pull failed: %s", connection.channel, error)
        async with run.uow() as uow:
            now = self._clock()
            values: dict[str, object] = {"last_pull_at": now, "last_error": error}
            behind = False
            if error is None:
                values["trades_cursor"] = _next(*trades_window)
                values["refunds_cursor"] = _next(*refunds_window)
                behind = trades_window[1] < end or refunds_window[1] < end
            await uow.session.execute(update(MarketplaceConnection).where(MarketplaceConnection.id == connection_id)
                                      .values(**values).execution_options(synchronize_session=False))
            # Behind by more than a window: the next one at once; else after the interval.
            await run.later(uow, now, 0.0 if behind else float(connection.poll_seconds))

    async def _trades(self, connection: Connection, adapter: MarketplaceAdapter, start: datetime, end: datetime) -> None:
        page, seen = 1, set()
        while True:
            found = await adapter.trades_since(start, end, page, PAGE_SIZE)
            for trade in found.trades:
                if trade.tid in seen:
                    continue  # repeated within this pull: once is enough
                seen.add(trade.tid)
                await self._importer.take(connection, trade, PULLED)
            if not found.has_next or not found.trades:
                return
            page += 1

    async def _refund_pages(self, connection: Connection, adapter: MarketplaceAdapter, start: datetime,
                            end: datetime) -> None:
        page = 1
        while True:
            found = await adapter.refunds_since(start, end, page, PAGE_SIZE)
            for refund in found.refunds:
                await self._refunds.honour(connection, refund)
            if not found.has_next or not found.refunds:
                return
            page += 1


def _window(cursor: datetime | None, end: datetime) -> tuple[datetime, datetime]:
    start = cursor if cursor is not None else end - FIRST_WINDOW
    return start, min(end, start + MAX_WINDOW)


def _next(start: datetime, end: datetime) -> datetime:
    return max(start, end - OVERLAP)
