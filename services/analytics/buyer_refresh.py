"""The gateway's background keeper of buyer profiles: contacts past retention erased, profiles recomputed."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.buyers import erase_contacts, figures, refresh
from models.buyers import BuyerProfile
from services.core.database import Database, log_failure

log = logging.getLogger("quanyi.buyers")


async def keep_once(db: Database, secret: bytes, *, retention_days: int, now: datetime) -> int | None:
    """One pass; the profiles recomputed, or None when another process was at it.

    On PostgreSQL the sums run inside the writing transaction, which holds an advisory lock so
    that one process at a time does the work. On SQLite a write transaction holds the
    database's only write lock, which every order placed meanwhile would wait for: the
    contacts past retention are erased in a transaction of their own, the sums are read
    beside the writers, and only the replacement of the profiles takes the lock.
    """
    postgres = db.engine.dialect.name == "postgresql"
    if retention_days and not postgres:
        async with db.sessions() as session, session.begin():
            await _erase(session, secret, retention_days=retention_days, now=now)
    found = None
    if not postgres:
        async with db.fresh_sessions() as session:
            found = await figures(session, secret)
    async with db.sessions() as session, session.begin():
        if retention_days and postgres:
            await _erase(session, secret, retention_days=retention_days, now=now)
        return await refresh(session, secret, now=now, found=found)


async def _erase(session: AsyncSession, secret: bytes, *, retention_days: int, now: datetime) -> None:
    erased = await erase_contacts(session, secret, before=now - timedelta(days=retention_days))
    if erased:
        log.info("erased the buyer contacts of %d orders older than %d days", erased, retention_days)


async def run_profiles(db: Database, secret: bytes, *, interval: float, retention_days: int) -> None:
    """Every `interval` seconds, until cancelled. A gateway that starts while the stored profiles
    are younger than `interval` waits out the rest of it: a restart, or a second process, does not
    sum every order again."""
    try:
        await asyncio.sleep(await until_due(db, interval))
    except asyncio.CancelledError:
        raise
    except Exception as error:
        log_failure(log, "reading when buyer profiles were last recomputed failed", error)
    while True:
        try:
            await keep_once(db, secret, retention_days=retention_days, now=datetime.now(UTC))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log_failure(log, "recomputing buyer profiles failed; retrying", error)
        await asyncio.sleep(interval)


async def until_due(db: Database, interval: float) -> float:
    async with db.fresh_sessions() as session:
        last = await session.scalar(select(func.max(BuyerProfile.refreshed_at)))
    if last is None:
        return 0.0
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    age = (datetime.now(UTC) - last).total_seconds()
    return max(0.0, min(interval, interval - age))
