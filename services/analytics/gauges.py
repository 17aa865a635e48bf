"""Figures for /metrics that only the database knows: the job queue and SKUs running low.

Read when Prometheus scrapes, in a few aggregate statements, so every worker answers the
same and nothing has to be counted along the way. The job queue is read through the
(status, run_after) index: only unfinished jobs are looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.analytics import DEMAND, LOW_STOCK_UNITS
from models import Job, Order, OrderLine, Product, Sku
from services.core import jobs
from services.inventory.stock import stock_for
from services.webhooks.events import WEBHOOK

# "Selling": ordered within this window.
SELLING_WINDOW = timedelta(hours=1)
KNOWN_KINDS = (jobs.FULFIL, jobs.DELIVER, jobs.NOTIFY, jobs.REFUND, WEBHOOK)


@dataclass(frozen=True, slots=True)
class JobFigures:
    kind: str
    queued: int  # due now, no worker holds it
    scheduled: int  # due later (backoff, a wait on a supplier)
    failing: int  # unfinished, failed at least once
    oldest_queued_seconds: float


@dataclass(frozen=True, slots=True)
class LowStock:
    code: str
    available: int
    selling: bool  # ordered within SELLING_WINDOW
    sku_id: int = 0
    name: str = ""


async def job_figures(session: AsyncSession, now: datetime) -> list[JobFigures]:
    """Unfinished jobs by kind; every known kind appears, with zeros when it has none."""
    unleased = or_(Job.locked_until.is_(None), Job.locked_until <= now)
    waiting = and_(Job.run_after <= now, unleased)
    rows = await session.execute(
        select(
            Job.kind,
            func.sum(case((waiting, 1), else_=0)),
            func.sum(case((and_(Job.run_after > now, unleased), 1), else_=0)),
            func.sum(case((Job.attempts > 0, 1), else_=0)),
            func.min(case((waiting, Job.run_after), else_=None)),
        )
        .where(Job.status == jobs.READY)
        .group_by(Job.kind)
    )
    found = {
        kind: JobFigures(kind, int(queued or 0), int(scheduled or 0), int(failing or 0), _age(oldest, now))
        for kind, queued, scheduled, failing, oldest in rows
    }
    for kind in KNOWN_KINDS:
        found.setdefault(kind, JobFigures(kind, 0, 0, 0, 0.0))
    return sorted(found.values(), key=lambda row: row.kind)


async def low_stock(session: AsyncSession, now: datetime, *, units: int = LOW_STOCK_UNITS) -> list[LowStock]:
    """SKUs on sale (active, of an active product) with at most `units` left to sell, lowest
    first; those ordered lately first among equals."""
    on_sale = {
        sku_id: (code, name)
        for sku_id, code, name in await session.execute(
            select(Sku.id, Sku.code, Sku.name)
            .join(Product, Product.id == Sku.product_id)
            .where(Sku.active.is_(True), Product.active.is_(True))
        )
    }
    stock = await stock_for(session, list(on_sale), now=now)
    low = {sku_id: figures.available for sku_id, figures in stock.items() if figures.available <= units}
    if not low:
        return []
    selling = set(
        await session.scalars(
            select(OrderLine.sku_id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(OrderLine.sku_id.in_(low), Order.created_at >= now - SELLING_WINDOW, Order.status.in_(DEMAND))
            .distinct()
        )
    )
    rows = [
        LowStock(on_sale[sku_id][0], available, sku_id in selling, sku_id, on_sale[sku_id][1])
        for sku_id, available in low.items()
    ]
    return sorted(rows, key=lambda row: (row.available, not row.selling, row.code))


def _age(since: datetime | None, now: datetime) -> float:
    if since is None:
        return 0.0
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return max((now - since).total_seconds(), 0.0)
