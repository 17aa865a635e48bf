"""Tells the group robots when an operator alert is raised and when it clears, once each.

Every pass computes the dashboard's alerts. A raised alert is claimed by inserting its notice
(`kind:subject`) and only the process whose insert wins posts it, so several gateways say it
once; an alert no longer standing has its notice deleted by one process, which posts "cleared".
A robot that fails is logged and the notice stays: the alert is not posted again (a robot that
is down is not flooded when it comes back).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from models import AlertNotice
from services.analytics.dashboard import Alert, snapshot
from services.analytics.robots import Robot, describe
from services.core.database import Database, log_failure

log = logging.getLogger("quanyi.alerts")


def notice_key(alert: Alert) -> str:
    return f"{alert.kind}:{alert.subject or ''}"[:200]


async def tell_once(db: Database, robots: Sequence[Robot], *, now: datetime) -> tuple[list[Alert], list[str]]:
    """One pass: (alerts raised and told now, notices cleared now)."""
    async with db.fresh_sessions() as session:
        standing = {notice_key(alert): alert for alert in (await snapshot(session, now)).figures.alerts}
    raised: list[Alert] = []
    cleared: list[str] = []
    async with db.sessions() as session, session.begin():
        upsert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        for key, alert in standing.items():
            won = await session.scalar(
                upsert(AlertNotice).values(key=key, raised_at=now).on_conflict_do_nothing(index_elements=["key"])
                .returning(AlertNotice.key)
            )
            if won is not None:
                raised.append(alert)
        known = list(await session.scalars(select(AlertNotice.key)))
        for key in known:
            if key not in standing:
                gone = await session.execute(delete(AlertNotice).where(AlertNotice.key == key).returning(AlertNotice.key))
                if gone.first() is not None:
                    cleared.append(key)
    for alert in raised:
        await _tell(robots, *describe(alert))
    for key in cleared:
        kind, _, subject = key.partition(":")
        await _tell(robots, *describe(Alert(kind, "WARNING", subject or None, None, 0), cleared=True))
    return raised, cleared


async def _tell(robots: Sequence[Robot], title: str, text: str) -> None:
    for robot in robots:
        try:
            await robot.post(title, text)
        except Exception as error:  # one robot down must not keep the others from hearing
            log_failure(log, f"the {robot.name} robot did not take an alert", error)


async def run_alert_robots(db: Database, robots: Sequence[Robot], interval: float) -> None:
    while True:
        try:
            await tell_once(db, robots, now=datetime.now(UTC))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log_failure(log, "telling alerts to the robots failed; retrying", error)
        await asyncio.sleep(interval)
