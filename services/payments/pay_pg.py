"""A payment that pays an unpaid order, on PostgreSQL in one statement.

The same rows and rules as the general path (receipts.py, then services/orders/lifecycle.py
pay), written as one prepared statement of data-modifying CTEs on the driver
(services/core/driver.py), for the payment every order of a sale brings:

- the order moves PENDING_PAYMENT -> PAID with the reference, paid_at now and no deadline,
  only while it is still PENDING_PAYMENT and not due (an UPDATE waits for the order's row
  lock and checks its status again after it, so of a payment and a cancel, an expiry or
  another payment exactly one wins, as with the general path's FOR UPDATE);
- only if no refund is owed for this payment already (the same payment reported while the
  order could not take it stays owed back), the order raised no buyer holds (those are
  given back by the general path), and, for a partner, the order is of its channel;
- with its event and its FULFIL job, queued (or woken) by the same upsert as
  services/core/jobs.py enqueue, in the same statement.

One statement is atomic on its own: no BEGIN, no COMMIT. When it moves nothing (a payment
reported again, a wrong state, an expired order, a refused caller, a reference of the wrong
length) the caller goes the general path, which answers all of those; so this path answers
only a payment that pays. Events go out after the statement, as after a commit.

Webhooks are queued in the transaction of the change on the general path; this path has
none, so it runs only while no webhook endpoint is enabled (services/webhooks/audience.py).
A marketplace's delivery report is queued for DELIVERED only, never at PAID.
"""

from __future__ import annotations

from datetime import datetime

import orjson

from domain.orders import OrderStatus
from domain.payments import MAX_REFERENCE
from models import Order
from services.core import jobs, telemetry
from services.core.database import Database
from services.core.driver import Driver
from services.payments.refunds import payment_key
from services.webhooks.audience import AUDIENCES

# $2: the partner's channel code, or NULL for an operator. The job's upsert is jobs.enqueue's.
PAY = """
WITH moved AS (
  UPDATE "order" SET status = 'PAID', updated_at = $3, payment_reference = $4, paid_at = $3, expires_at = NULL
  WHERE id = $1 AND status = 'PENDING_PAYMENT' AND (expires_at IS NULL OR expires_at > $3)
    AND ($2::text IS NULL OR channel_id = (SELECT id FROM channel WHERE code = $2::text))
    AND (buyer_tallies IS NULL OR NOT EXISTS (
           SELECT 1 FROM json_array_elements(buyer_tallies) AS tally WHERE (tally->>2)::int <> 0))
    AND NOT EXISTS (SELECT 1 FROM refund WHERE key = $5)
  RETURNING *
), event AS (
  INSERT INTO order_event (order_id, actor, from_status, to_status, reason, at)
  SELECT id, $6, 'PENDING_PAYMENT', 'PAID', $7, $3 FROM moved
), job AS (
  INSERT INTO job (kind, key, order_id, payload, status, attempts, run_after, created_at)
  SELECT $8, $9, id, '{}', 'READY', 0, $3, $3 FROM moved
  ON CONFLICT (key) DO UPDATE SET run_after = excluded.run_after
  WHERE job.status = 'READY' AND (job.run_after > excluded.run_after OR job.lease IS NOT NULL)
)
SELECT moved.*, channel.code AS channel_code, channel.currency AS channel_currency
FROM moved JOIN channel ON channel.id = moved.channel_id
"""

_ORDER_COLUMNS = tuple(column.key for column in Order.__table__.columns)


async def handles(db: Database, reference: str) -> bool:
    """Whether this path may try the payment: the reference is one the general path takes,
    and no webhook endpoint listens (as this process last read, at most a few seconds ago)."""
    if not 1 <= len(reference.strip()) <= MAX_REFERENCE:
        return False
    silent = AUDIENCES.silent()
    if silent is None:
        async with db.fresh_sessions() as session:
            await AUDIENCES.of(session, None)
        silent = AUDIENCES.silent()
    return bool(silent)


async def pay(
    driver: Driver, order_id: int, reference: str, *, channel: str | None, actor: str, now: datetime,
) -> tuple[Order, str, int, str] | None:
    """Pay order `order_id` with `reference`: the order as paid, its channel's code, id and
    currency; None when nothing moved (the general path answers). `channel`: the caller's
    channel, for a partner; None for an operator."""
    reference = reference.strip()
    row = await driver.fetchrow(
        PAY, order_id, channel, now, reference, payment_key(order_id, reference), actor,
        f"payment {reference}"[:500], jobs.FULFIL, jobs.request_fulfilment_key(order_id),
    )
    if row is None:
        return None
    telemetry.order_transitions_committed([(OrderStatus.PENDING_PAYMENT, OrderStatus.PAID)])
    values = {name: row[name] for name in _ORDER_COLUMNS}
    values["status"] = OrderStatus.PAID
    if isinstance(values["buyer_tallies"], str):  # json arrives as its text
        values["buyer_tallies"] = orjson.loads(values["buyer_tallies"])
    return Order(**values), row["channel_code"], row["channel_id"], row["channel_currency"]
