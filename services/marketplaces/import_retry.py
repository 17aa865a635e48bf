"""An operator's retry of a failed import (`retryMarketplaceImport`): stock came in, or the
outer id is mapped now.

Only a FAILED trade without an order of ours is retried (a trade sold below our price has a
cancelled order, whose number the trade keeps). The trade is read again from the marketplace
first, with no transaction open: one the buyer has since refunded or that was closed is not
imported. The record then goes FAILED -> RECEIVED in one conditional UPDATE, so of two
retries at once one imports and the other is refused; the import runs as a pulled trade's
does (services/marketplaces/imports.py). Twice is once: a retry of a trade that is no longer
FAILED changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from marketplaces.base import PAID, MarketplaceRefused, MarketplaceUnavailable
from models import Channel, MarketplaceOrder
from services.core.database import Database
from services.marketplace_events.states import FAILED
from services.marketplaces.connections import Markets
from services.marketplaces.imports import Importer, Taken


@dataclass(frozen=True, slots=True)
class Retried:
    taken: Taken | None
    error_code: str | None = None
    message: str = ""


class ImportRetry:
    def __init__(self, db: Database, markets: Markets, importer: Importer) -> None:
        self._db, self._markets, self._importer = db, markets, importer

    async def retry(self, record_id: int) -> Retried:
        async with self._db.fresh_sessions() as session:
            found = (await session.execute(
                select(MarketplaceOrder, Channel.code).join(Channel, Channel.id == MarketplaceOrder.channel_id)
                .where(MarketplaceOrder.id == record_id))).first()
            if found is None:
                return Retried(None, "NOT_FOUND", "no marketplace trade with this id")
            record, code = found
            if record.status != FAILED:
                return Retried(None, "INVALID_STATE", "only a trade whose import FAILED can be retried")
            if record.order_id is not None:
                return Retried(None, "INVALID_STATE", "the trade's order was cancelled; it cannot be imported again")
            connected = await self._markets.connection(session, channel=code)
        if connected is None or not connected[0].enabled:
            return Retried(None, "MARKETPLACE_UNAVAILABLE", "the channel's marketplace connection is missing or disabled")
        connection, adapter = connected
        try:
            trade = await adapter.trade(record.tid)
        except MarketplaceUnavailable:
            return Retried(None, "MARKETPLACE_UNAVAILABLE", "the marketplace did not answer; try again later")
        except MarketplaceRefused as refused:
            return Retried(None, "MARKETPLACE_REFUSED", f"the marketplace refused to show the trade ({refused.code})")
        if trade.status != PAID or trade.tid != record.tid:
            return Retried(None, "TRADE_NOT_PAID", f"the trade is {trade.status} on the marketplace: nothing to import")
        taken = await self._importer.retake(connection, trade, record_id)
        if taken is None:
            return Retried(None, "INVALID_STATE", "only a trade whose import FAILED can be retried")
        if taken.status == FAILED:
            return Retried(taken, "IMPORT_FAILED", f"imported again, and failed again: {taken.reason}")
        return Retried(taken)
