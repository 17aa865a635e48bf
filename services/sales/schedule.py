"""Operators schedule and cancel sales; each change is recorded in the catalog change log.

Scheduling enqueues, in the same transaction, the durable job that warms every gateway
process a few seconds before the start (services/sales/warm.py): the warm-up happens
exactly when the sale exists, whichever process runs it and whatever restarted meanwhile.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.sales import SaleError, check_schedule
from models import CatalogChange, Channel, SaleEvent, SaleRegistration, Sku
from services.core import jobs

WARM = "sale-warm"  # the job kind


def warm_key(sale_id: int) -> str:
    return f"sale-warm:{sale_id}"


def sale_record(row: SaleEvent, channel: str, sku: str) -> dict[str, Any]:
    """The sale as the change log keeps it."""
    def at(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "type": "sale", "channel": channel, "sku": sku, "startsAt": at(row.starts_at), "endsAt": at(row.ends_at),
        "registrationOpensAt": at(row.registration_opens_at), "registrationClosesAt": at(row.registration_closes_at),
        "cancelled": row.cancelled_at is not None,
    }


async def schedule_sale(
    session: AsyncSession, channel: Channel, sku_id: int, *, starts_at: datetime, ends_at: datetime | None,
    opens_at: datetime | None, closes_at: datetime | None, actor: str, now: datetime, warm_seconds: float,
) -> SaleEvent:
    """A new sale of the SKU on the channel, or SaleError. One sale at a time: a sale that has
    not ended must be cancelled before another is scheduled."""
    sku_code = await session.scalar(select(Sku.code).where(Sku.id == sku_id))
    if sku_code is None:
        raise SaleError("skuId", "no such SKU", "NOT_FOUND")
    opens, closes = check_schedule(now, starts_at, ends_at, opens_at, closes_at)
    running = await session.scalar(
        select(SaleEvent.id).where(
            SaleEvent.channel_id == channel.id, SaleEvent.sku_id == sku_id, SaleEvent.cancelled_at.is_(None),
            SaleEvent.ends_at.is_(None) | (SaleEvent.ends_at > now),
        ).limit(1)
    )
    if running is not None:
        raise SaleError("skuId", "this SKU already has a sale on the channel that has not ended; cancel it first", "SALE_EXISTS")
    row = SaleEvent(
        channel_id=channel.id, sku_id=sku_id, starts_at=starts_at, ends_at=ends_at,
        registration_opens_at=opens, registration_closes_at=closes, created_by=actor, created_at=now,
    )
    session.add(row)
    await session.flush()
    session.add(CatalogChange(
        entity="SALE", entity_id=row.id, code=f"{channel.code}/{sku_code}", action="SCHEDULED", actor=actor,
        before=None, after=sale_record(row, channel.code, sku_code), at=now,
    ))
    lead = (starts_at - now - timedelta(seconds=warm_seconds)).total_seconds()
    await jobs.enqueue(session, WARM, warm_key(row.id), now=now, payload={"sale": row.id}, delay=max(0.0, lead))
    return row


async def cancel_sale(session: AsyncSession, sale_id: int, *, actor: str, now: datetime) -> tuple[SaleEvent, str]:
    """The sale, cancelled, and its channel's code; SaleError when there is none to cancel.

    From then on the sale governs nothing: the SKU sells on the channel as before it.
    """
    found = (
        await session.execute(
            select(SaleEvent, Channel.code, Sku.code)
            .join(Channel, Channel.id == SaleEvent.channel_id).join(Sku, Sku.id == SaleEvent.sku_id)
            .where(SaleEvent.id == sale_id).with_for_update(of=SaleEvent)
        )
    ).first()
    if found is None:
        raise SaleError("saleId", "no such sale", "NOT_FOUND")
    row, channel, sku_code = found
    if row.cancelled_at is not None:
        raise SaleError("saleId", "this sale is already cancelled", "ALREADY_CANCELLED")
    before = sale_record(row, channel, sku_code)
    row.cancelled_at = now
    session.add(CatalogChange(
        entity="SALE", entity_id=row.id, code=f"{channel}/{sku_code}", action="CANCELLED", actor=actor,
        before=before, after=sale_record(row, channel, sku_code), at=now,
    ))
    return row, channel


async def latest_sale(session: AsyncSession, channel_id: int, sku_id: int) -> SaleEvent | None:
    """The sale that governs the SKU on the channel: the latest to start of those not cancelled."""
    return await session.scalar(
        select(SaleEvent)
        .where(SaleEvent.channel_id == channel_id, SaleEvent.sku_id == sku_id, SaleEvent.cancelled_at.is_(None))
        .order_by(SaleEvent.starts_at.desc(), SaleEvent.id.desc()).limit(1)
    )


async def registrations(session: AsyncSession, sale_id: int) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(SaleRegistration).where(SaleRegistration.sale_id == sale_id)
    ) or 0)
