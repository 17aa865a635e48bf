"""How often a line's codes may be sent again: RESENDS_PER_WINDOW in RESEND_WINDOW.

Each resend is an SMS or an e-mail to the buyer, and a buyer's access token (or a partner's
key) is all it takes: without a limit one script could flood a phone or spend the shop's
SMS budget. One row per line holds the open window and its count. A resend is counted by
one statement, an upsert whose update has a condition (a new window once the old one has
closed, else one more while under the limit), so concurrent requests never get more than
the limit between them. The count commits with the delivery jobs it allows: a resend that
rolls back is not counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models import DeliveryResend

RESENDS_PER_WINDOW = 3
RESEND_WINDOW = timedelta(hours=1)


async def take_resend(session: AsyncSession, line_id: int, now: datetime) -> datetime | None:
    """Count one resend of the line: None when it may go out, else when the next one may."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    at = literal(now, DeliveryResend.window_start.type)
    closed = DeliveryResend.window_start <= literal(now - RESEND_WINDOW, DeliveryResend.window_start.type)
    taken = await session.scalar(
        insert(DeliveryResend).values(line_id=line_id, window_start=now, resends=1)
        .on_conflict_do_update(
            index_elements=[DeliveryResend.line_id],
            set_={
                "window_start": case((closed, at), else_=DeliveryResend.window_start),
                "resends": case((closed, 1), else_=DeliveryResend.resends + 1),
            },
            where=closed | (DeliveryResend.resends < RESENDS_PER_WINDOW),
        )
        .returning(DeliveryResend.line_id)
    )
    if taken is not None:
        return None
    opened = await session.scalar(select(DeliveryResend.window_start).where(DeliveryResend.line_id == line_id))
    return (opened or now) + RESEND_WINDOW
