"""Which events exist, who may hear them, and how one is queued for its endpoints.

`emit` runs in the transaction of the change it tells of: one delivery row and one job per
endpoint that listens, so the event goes out exactly when the change commits, and never
from the request path (the job worker sends it). An event with a channel reaches that
channel's endpoints and the operators' endpoints without one; an event without a channel
(stock, suppliers) reaches only the operators' endpoints without one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import WebhookDelivery, WebhookEndpoint
from services.core import jobs
from services.webhooks.audience import AUDIENCES, Audience

ORDER_PAID = "order.paid"
ORDER_DELIVERED = "order.delivered"
ORDER_REFUNDED = "order.refunded"
ORDER_STATUS_CHANGED = "order.status_changed"
STATEMENT_CONFIRMED = "statement.confirmed"
STOCK_LOW = "stock.low"
SUPPLIER_FAILING = "supplier.failing"

# Events about one channel's business: its partner may listen to them.
CHANNEL_EVENTS = (ORDER_PAID, ORDER_DELIVERED, ORDER_REFUNDED, ORDER_STATUS_CHANGED, STATEMENT_CONFIRMED)
# Events about the platform: operators only.
PLATFORM_EVENTS = (STOCK_LOW, SUPPLIER_FAILING)
EVENT_TYPES = CHANNEL_EVENTS + PLATFORM_EVENTS

WEBHOOK = "webhook"  # the job kind: send one delivery
PENDING, DELIVERED, FAILED = "PENDING", "DELIVERED", "FAILED"


def job_key(delivery_id: int, redelivery: str = "") -> str:
    """The job of a delivery's first sending, or of one of its redeliveries by hand."""
    return f"{WEBHOOK}:{delivery_id}" + (f":{redelivery}" if redelivery else "")


def body(event_type: str, data: dict[str, object], at: datetime) -> bytes:
    return orjson.dumps({"type": event_type, "timestamp": instant(at), "data": data})


def instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def audience(session: AsyncSession, channel_id: int | None) -> Audience:
    """The enabled endpoints that hear events of `channel_id` (None: channel-less events)."""
    return await AUDIENCES.of(session, channel_id)


def listens(endpoints: Audience, event_type: str) -> bool:
    return any(event_type in events for _, events in endpoints)


async def emit(
    session: AsyncSession, event_type: str, data: dict[str, object], *, channel_id: int | None, now: datetime,
    endpoints: Audience | None = None,
) -> int:
    """Queue `event_type` for every enabled endpoint that listens (`endpoints`, when the
    caller read them already); how many will hear it."""
    assert event_type in EVENT_TYPES, event_type
    if endpoints is None:
        endpoints = await audience(session, channel_id)
    listening = [endpoint_id for endpoint_id, events in endpoints if event_type in events]
    if not listening:
        return 0
    connection = await session.connection()
    encoded = body(event_type, data, now).decode()
    for endpoint_id in listening:
        delivery_id = (await connection.execute(_NEW_DELIVERY, {
            "endpoint_id": endpoint_id, "channel_id": channel_id, "event_type": event_type,
            "message_id": f"msg_{uuid.uuid4().hex}", "body": encoded, "status": PENDING, "attempts": 0,
            "next_attempt_at": now, "created_at": now,
        })).scalar_one_or_none()
        if delivery_id is None:
            continue  # removed or disabled since this process last read the endpoints
        await jobs.enqueue(session, WEBHOOK, job_key(delivery_id), now=now, payload={"delivery": delivery_id})
    return len(listening)


_ENDPOINT = WebhookEndpoint.__table__
_DELIVERY = WebhookDelivery.__table__
_FIELDS = ("channel_id", "event_type", "message_id", "body", "status", "attempts", "next_attempt_at", "created_at")
# INSERT ... SELECT from the endpoint's row: nothing is written for an endpoint gone or disabled.
_NEW_DELIVERY = insert(_DELIVERY).from_select(
    ["endpoint_id", *_FIELDS],
    select(_ENDPOINT.c.id, *(bindparam(name, type_=_DELIVERY.c[name].type) for name in _FIELDS))
    .where(_ENDPOINT.c.id == bindparam("endpoint_id"), _ENDPOINT.c.enabled.is_(True)),
).returning(_DELIVERY.c.id)
