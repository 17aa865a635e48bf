"""The gateway's background keeper of buyer profiles: contacts past retention erased, profiles recomputed."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from services.analytics.buyers import erase_contacts, refresh
from services.core.database import Database, log_failure

log = logging.getLogger("quanyi.buyers")


async def keep_once(db: Database, secret: bytes, *, retention_days: int, now: datetime) -> int | None:
    """One pass in one transaction; the profiles recomputed, or None when another process was at it."""
    async with db.sessions() as session, session.begin():
        if retention_days:
            erased = await erase_contacts(session, secret, before=now - timedelta(days=retention_days))
            if erased:
                log.info("erased the buyer contacts of %d orders older than %d days", erased, retention_days)
        return await refresh(session, secret, now=now)


async def run_profiles(db: Database, secret: bytes, *, interval: float, retention_days: int) -> None:
    """Every `interval` seconds, until cancelled."""
    while True:
        try:
            await keep_once(db, secret, retention_days=retention_days, now=datetime.now(UTC))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log_failure(log, "recomputing buyer profiles failed; retrying", error)
        await asyncio.sleep(interval)
