"""The two moments settlement listens to. Each is called exactly once per order line, in
the transaction that decides the line, so the ledger entries commit with it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.settlement import ledger, prepaid


async def line_delivered(session: AsyncSession, line_id: int, supplier_id: int | None, at: datetime) -> None:
    """An order line was delivered; `supplier_id` fulfilled it (the top-up supplier that
    succeeded, or for codes the SKU's first-priority supplier). Posts its settlement."""
    await ledger.post_delivery(session, line_id, supplier_id=supplier_id, at=at)


async def line_refunded(session: AsyncSession, line_id: int, at: datetime) -> None:
    """An order line was refunded instead of delivered. Posts the reversal of what it had
    posted, and returns a prepaid payment to the channel's balance."""
    await ledger.post_refund(session, line_id, at=at)
    await prepaid.refund_line(session, line_id, at=at)
