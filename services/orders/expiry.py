"""The background sweep that expires unpaid orders and returns their stock."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from broker import Broker
from services.core.database import Database, log_failure
from services.core.unit_of_work import UnitOfWork
from services.orders.lifecycle import due_orders, expire_if_due

log = logging.getLogger("quanyi.expiry")

BATCH = 100


async def expire_once(db: Database, broker: Broker) -> int:
    """Expire up to BATCH due orders, each in its own short transaction; returns how many.

    Finding them is a plain read, so an idle sweep never takes SQLite's write lock.
    """
    now = datetime.now(UTC)
    async with db.fresh_sessions() as session:
        due = await due_orders(session, now, BATCH)
    expired = 0
    for order_id in due:
        async with UnitOfWork(db, broker) as uow:
            expired += await expire_if_due(uow, order_id, now)
    return expired


async def run_expiry(db: Database, broker: Broker, interval: float) -> None:
    """Every `interval` seconds, until cancelled. Safe in every process at once:
    each order moves out of PENDING_PAYMENT in exactly one transaction."""
    while True:
        try:
            expired = await expire_once(db, broker)
            if expired:
                log.info("expired %d unpaid orders", expired)
            if expired >= BATCH:
                continue  # more are due: no pause
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log_failure(log, "the expiry sweep failed; retrying", error)
        await asyncio.sleep(interval)
