"""The two moments settlement listens to. Each is called exactly once per order line, in
the transaction that decides the line, so a ledger entry written here commits with it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession


async def line_delivered(session: AsyncSession, line_id: int, supplier_id: int | None, at: datetime) -> None:
    """An order line was delivered; `supplier_id` fulfilled it (the top-up supplier that
    succeeded, or for codes the SKU's first-priority supplier). Nothing to do yet."""


async def line_refunded(session: AsyncSession, line_id: int, at: datetime) -> None:
    """An order line was refunded instead of delivered. Nothing to do yet."""
