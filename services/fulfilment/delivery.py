"""Selling an order line's codes and sending them out, once per line and channel.

Selling is two conditional UPDATEs (allocations HELD -> SOLD, codes RESERVED -> SOLD), so
running it again changes nothing. Sending is a job per (line, channel, round): the inbox row
and the Delivery record commit with the job's completion; SMS and email are sent before
that commit, so they are at-least-once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import CodeStatus
from models import Allocation, CardCode, Delivery, Order, OrderLine, Sku, Supplier, SupplierAttempt, TopUpTask
from services.core import jobs
from services.core.secret_box import SecretBox
from services.fulfilment.senders import Message, Sender
from services.inventory.reservation import HELD, SOLD

log = logging.getLogger("quanyi.delivery")

SENT, FAILED = "SENT", "FAILED"


@dataclass(frozen=True, slots=True)
class Code:
    number: str | None
    secret: str
    expires_at: datetime | None


async def sell_codes(session: AsyncSession, line_id: int) -> int:
    """The line's held codes and serial uses become SOLD; returns the allocations sold now."""
    sold = list(
        await session.scalars(
            update(Allocation)
            .where(Allocation.line_id == line_id, Allocation.state == HELD, Allocation.source.in_(("CODE", "SERIAL")))
            .values(state=SOLD)
            .returning(Allocation.id)
            .execution_options(synchronize_session=False)
        )
    )
    await session.execute(
        update(CardCode)
        .where(CardCode.order_line_id == line_id, CardCode.status == CodeStatus.RESERVED)
        .values(status=CodeStatus.SOLD)
        .execution_options(synchronize_session=False)
    )
    return len(sold)


async def sold_codes(session: AsyncSession, box: SecretBox, line_id: int) -> list[Code]:
    """The codes sold to a line, decrypted, in the order they were allocated."""
    rows = (
        await session.execute(
            select(CardCode, Allocation.units)
            .join(Allocation, Allocation.code_id == CardCode.id)
            .where(Allocation.line_id == line_id, Allocation.state == SOLD)
            .order_by(Allocation.id)
        )
    ).all()
    codes: list[Code] = []
    for code, _units in rows:
        secret = box.open(code.secret_ciphertext, context=str(code.sku_id).encode())
        codes.append(Code(code.number, secret, code.expires_at))
    return codes


async def enqueue_delivery(
    session: AsyncSession, order: Order, line_id: int, senders: Sequence[Sender], *, now: datetime, round: str = "1"
) -> None:
    """One job per channel that can reach the buyer."""
    probe = Message(order.id, order.number, line_id, "", "", phone=order.buyer_phone, email=order.buyer_email)
    for sender in senders:
        if sender.accepts(probe):
            await jobs.enqueue(session, jobs.DELIVER, f"deliver:{line_id}:{sender.channel}:{round}", now=now,
                               order_id=order.id, payload={"line": line_id, "channel": sender.channel})


async def deliver(session: AsyncSession, box: SecretBox, senders: Mapping[str, Sender], line_id: int, channel: str,
                  now: datetime) -> None:
    """Send one line's codes on one channel and record it; raises (after recording) if the send failed."""
    line = await session.get(OrderLine, line_id)
    order = await session.get(Order, line.order_id) if line else None
    sender = senders.get(channel)
    if line is None or order is None or sender is None:
        return
    sku = await session.get(Sku, line.sku_id)
    codes = await sold_codes(session, box, line_id)
    name = sku.name if sku else "your purchase"
    message = Message(
        order.id, order.number, line_id,
        subject=f"Order {order.number}: {name} delivered",
        body=f"{len(codes)} code(s) for {name} are ready. Open the order to reveal them.",
        phone=order.buyer_phone, email=order.buyer_email,
        codes=[f"{code.number or ''} {code.secret}".strip() for code in codes],
    )
    # A failure propagates: the caller records it in a transaction of its own, since
    # this one rolls back.
    await sender.send(session, message)
    await record_delivery(session, line_id, channel, SENT, None, now)
    log.info("order %s line %s delivered via %s", order.number, line_id, channel)


async def record_delivery(session: AsyncSession, line_id: int, channel: str, status: str, error: str | None,
                  now: datetime) -> None:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(Delivery).values(
        line_id=line_id, channel=channel, status=status, attempts=1, last_error=error,
        sent_at=now if status == SENT else None, created_at=now,
    )
    changes: dict[str, object] = {"status": status, "attempts": Delivery.attempts + 1, "last_error": error}
    if status == SENT:
        changes["sent_at"] = now
    await session.execute(statement.on_conflict_do_update(index_elements=[Delivery.line_id, Delivery.channel],
                                                          set_=changes))


async def deliveries_of(session: AsyncSession, line_ids: Sequence[int]) -> list[Delivery]:
    return list(await session.scalars(select(Delivery).where(Delivery.line_id.in_(line_ids)).order_by(Delivery.id)))


@dataclass(frozen=True, slots=True)
class TopUpDelivery:
    """A line's top-up as a delivery: the supplier trying (or that credited) it and how it stands."""

    supplier: str | None
    status: str  # SENT (credited), PENDING (under way or waiting), FAILED (every supplier refused)
    attempts: int  # exchanges with suppliers
    sent_at: datetime | None
    waiting_since: datetime | None


async def topup_deliveries(session: AsyncSession, line_id: int) -> list[TopUpDelivery]:
    """The line's top-ups (one, or one per top-up component of a bundle), in task order."""
    exchanges = (
        select(func.count()).select_from(SupplierAttempt)
        .where(SupplierAttempt.task_id == TopUpTask.id).scalar_subquery()
    )
    rows = await session.execute(
        select(TopUpTask.status, Supplier.code, exchanges, TopUpTask.updated_at, TopUpTask.waiting_since)
        .outerjoin(Supplier, Supplier.id == TopUpTask.supplier_id)
        .where(TopUpTask.line_id == line_id)
        .order_by(TopUpTask.id)
    )
    shown = {"SUCCEEDED": "SENT", "FAILED": "FAILED", "CANCELLED": "FAILED"}
    return [
        TopUpDelivery(code, shown.get(status, "PENDING"), int(count), updated if status == "SUCCEEDED" else None,
                      waiting if status == "NEW" else None)
        for status, code, count, updated, waiting in rows
    ]


async def line_supplier(session: AsyncSession, line_id: int) -> str | None:
    """The code of the supplier the line's cost is charged to: the one that delivered it."""
    return await session.scalar(
        select(Supplier.code).join(OrderLine, OrderLine.supplier_id == Supplier.id).where(OrderLine.id == line_id)
    )


async def sold_codes_count(session: AsyncSession, line_id: int) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(Allocation)
        .where(Allocation.line_id == line_id, Allocation.state == SOLD, Allocation.code_id.is_not(None))
    ) or 0)
