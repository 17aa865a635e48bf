"""An order's write on PostgreSQL: one call of the placement function for an order without a
coupon; BEGIN, the statements below and COMMIT for one with a coupon.

The same rows and rules as the general path in placing.py. Without a coupon the whole
order is one round trip, `quanyi_place_order_v1` (migrations/versions/0037_order_placement_function.py),
called on its own so that PostgreSQL makes it one transaction: the buyers' counts, the order
noting them, its two events, the risk verdict, its lines, then each capped SKU's quota and
each line's stock in SKU order; a refusal raises an error of its own SQLSTATE that rolls
the call back and is answered here (`_refusal`). A key another order holds fails on the
order's unique index, as below.

With a coupon, the statements below inside one transaction on the driver:

1. The order, its lines, its two events (placed; then waiting for payment or held for
   review) and the risk verdict, in one statement of data-modifying CTEs. The order is
   inserted in the status the verdict gives it, so no UPDATE follows. The unique (channel,
   key) index still decides between concurrent duplicates, here, before any stock is
   touched: the loser waits for the winner's commit, then fails with a unique violation and
   is answered as a retry. The statement also reads which lines' SKUs the channel caps.
2. The buyers' counts (tallies.py's upsert), then the order's note of them, when a limit applies;
   then the coupon (services/campaigns/redemption.py).
3. Each capped SKU's quota, in SKU order: a savepoint, then the conditional UPDATE of one
   of the quota's slots with its use; further steps only when no slot with room was free
   (services/inventory/quota_slots.py).
4. Each line's stock, in SKU order: codes locked as they are chosen (`FOR UPDATE SKIP
   LOCKED` inside `ARRAY(...)`, an uncorrelated sub-select PostgreSQL runs once) and claimed
   by an UPDATE that checks them again, with their allocations in the same statement; or
   a savepoint, then the conditional UPDATE of one of the counter's slots with its
   allocation; only when every slot with enough is held by another order, or none holds
   enough, further steps after rolling back to the savepoint (services/inventory/slots.py).

Any refusal raises inside the transaction, which rolls everything back. Only CARD_CODE and
DIRECT_RECHARGE lines without presale come this way (`handles`); bundles, serials and
presale take the general path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from domain.catalog import SkuKind
from domain.limits import Tally, breach_of, merged
from domain.orders import OrderStatus
from domain.risk import Decision, Verdict
from models import Order
from services.campaigns.redemption import CLAIM_CODE_PG, COUNT_CAMPAIGN_PG, SPENT, USED
from services.core import telemetry
from services.core.driver import Driver, Session
from services.orders.draft import Draft, PlaceOrder, Placed, limit_refusal, refused
from services.orders.slots_pg import take_counter, take_quota
from services.risk.check import facts_record

ORDER_WITH_LINES = """
WITH placed AS (
  INSERT INTO "order" (number, channel_id, idempotency_key, status, currency, total_fen, buyer_phone,
                       buyer_email, recharge_account, device_id, coupon_code, client_ip, placed_by,
                       created_at, updated_at, expires_at, campaign_id, discount_fen)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $27, $28)
  RETURNING id
), line AS (
  INSERT INTO order_line (order_id, sku_id, quantity, unit_price_fen, presale_quantity, discount_fen)
  SELECT placed.id, wanted.sku_id, wanted.quantity, wanted.unit_price_fen, 0, wanted.discount_fen
  FROM placed, unnest($16::int[], $17::int[], $18::bigint[], $29::bigint[])
       AS wanted(sku_id, quantity, unit_price_fen, discount_fen)
  RETURNING id, sku_id
), event AS (
  INSERT INTO order_event (order_id, actor, from_status, to_status, reason, at)
  SELECT placed.id, moved.actor, moved.from_status, moved.to_status, moved.reason, $14
  FROM placed, unnest($19::text[], $20::text[], $21::text[], $22::text[])
       WITH ORDINALITY AS moved(actor, from_status, to_status, reason, n)
  ORDER BY moved.n
), verdict AS (
  INSERT INTO risk_verdict (order_id, channel_id, idempotency_key, decision, score, reasons, facts, created_at)
  SELECT placed.id, $2, $3, $23, $24, $25::json, $26::json, $14 FROM placed
)
SELECT placed.id AS order_id, line.id AS line_id, line.sku_id,
       EXISTS (SELECT 1 FROM channel_quota WHERE channel_id = $2 AND sku_id = line.sku_id) AS capped
FROM placed CROSS JOIN line
"""

RAISE_TALLIES = """
INSERT INTO buyer_tally (scope, buyer, units, cap)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[])
ON CONFLICT (scope, buyer) DO UPDATE SET units = buyer_tally.units + excluded.units, cap = excluded.cap
WHERE buyer_tally.units + excluded.units <= excluded.cap
RETURNING scope, buyer, id
"""

NOTE_TALLIES = 'UPDATE "order" SET buyer_tallies = $2::json WHERE id = $1'

# SKIP LOCKED: concurrent buyers take different codes instead of queueing on the same rows.
TAKE_CODES = """
WITH claimed AS (
  UPDATE card_code SET status = 'RESERVED', order_line_id = $1
  WHERE id = ANY(ARRAY(
          SELECT id FROM card_code
          WHERE sku_id = $2 AND status = 'AVAILABLE' AND uses_left > 0
            AND (expires_at IS NULL OR expires_at > $4)
          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED))
    AND status = 'AVAILABLE'
  RETURNING id
)
INSERT INTO allocation (line_id, sku_id, code_id, units, state, source)
SELECT $1, $2, claimed.id, 1, 'HELD', 'CODE' FROM claimed
RETURNING code_id
"""

DIRECT_KINDS = (SkuKind.CARD_CODE, SkuKind.DIRECT_RECHARGE)


def handles(draft: Draft) -> bool:
    """Whether this path can write the draft: codes and counters without presale, not rejected."""
    return draft.verdict.decision is not Decision.REJECT and all(
        sku.kind in DIRECT_KINDS and sku.presale_cap == 0 for sku in draft.skus.values()
    )


class KeyTaken(Exception):
    """The (channel, key) index refused the order: another holds the key."""


class _Refused(Exception):
    def __init__(self, placed: Placed, sold_out: int | None = None) -> None:
        self.placed, self.sold_out = placed, sold_out


@dataclass
class Written:
    placed: Placed
    sold_out: int | None = None  # a SKU the database found with no stock at all


async def write(
    driver: Driver, draft: Draft, command: PlaceOrder, actor: str, number: str, *,
    now: datetime, ttl: timedelta, review_ttl: timedelta | None,
) -> Written:
    """Place the drafted order; raises KeyTaken when its key is another order's."""
    review = draft.verdict.decision is Decision.REVIEW
    status = OrderStatus.REVIEW if review else OrderStatus.PENDING_PAYMENT
    expires_at = now + ((review_ttl or ttl) if review else ttl)
    try:
        if draft.coupon is None:
            order_id, lines, tallies = await _call(driver, draft, command, actor, number, status, expires_at, now)
        else:
            async with driver.transaction() as session:
                order_id, lines, tallies = await _write(session, draft, command, actor, number, status, expires_at, now)
    except _Refused as refusal:
        return Written(refusal.placed, refusal.sold_out)
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name == "uq_order_channel_idempotency":
            raise KeyTaken from None
        raise
    telemetry.order_transitions_committed([(None, OrderStatus.PENDING_RISK), (OrderStatus.PENDING_RISK, status)])
    buyer = command.buyer
    order = _written_order(
        id=order_id, number=number, channel_id=draft.channel_id, idempotency_key=draft.key, status=status,
        currency=draft.currency, total_fen=draft.total.minor, buyer_phone=buyer.phone, buyer_email=buyer.email,
        recharge_account=buyer.recharge_account, device_id=buyer.device_id, coupon_code=command.coupon_code,
        client_ip=command.client_ip, placed_by=actor, payment_reference=None, created_at=now, updated_at=now,
        expires_at=expires_at, paid_at=None, buyer_tallies=tallies,
        campaign_id=draft.coupon.campaign_id if draft.coupon else None,
        discount_fen=draft.coupon.total if draft.coupon else 0,
    )
    return Written(Placed(order, created=True, changed_skus=sorted(lines)))


_new_order = Order.__mapper__.class_manager.new_instance


def _written_order(**values: Any) -> Order:
    """The Order just written, made as SQLAlchemy makes the object of a row it loaded: its
    values set without the constructor's attribute events (about 20 µs an order). Like a
    constructed one, it belongs to no session; nothing here adds it to one."""
    order = _new_order()
    order.__dict__.update(values)
    return order  # type: ignore[no-any-return]


async def _write(
    session: Session, draft: Draft, command: PlaceOrder, actor: str, number: str, status: OrderStatus,
    expires_at: datetime, now: datetime,
) -> tuple[int, dict[int, int], list[list[int]] | None]:
    """The order's id, its line ids by SKU, and the tallies it raised."""
    buyer, verdict, coupon = command.buyer, draft.verdict, draft.coupon
    rows = await session.fetch(
        ORDER_WITH_LINES,
        number, draft.channel_id, draft.key, status.value, draft.currency, draft.total.minor,
        buyer.phone, buyer.email, buyer.recharge_account, buyer.device_id, command.coupon_code,
        command.client_ip, actor, now, expires_at,
        [line.sku_id for line in draft.lines], [line.quantity for line in draft.lines],
        [unit.minor for unit in draft.units],
        [actor, "system"], [None, OrderStatus.PENDING_RISK.value],
        [OrderStatus.PENDING_RISK.value, status.value], ["placed", _why(status, verdict)[:500]],
        verdict.decision.value, verdict.score, _reasons(verdict), orjson.dumps(facts_record(draft.facts)).decode(),
        coupon.campaign_id if coupon else None, coupon.total if coupon else 0,
        coupon.discounts if coupon else [0] * len(draft.lines),
    )
    order_id = rows[0]["order_id"]
    lines = {row["sku_id"]: row["line_id"] for row in rows}
    capped = [row["sku_id"] for row in rows if row["capped"]]
    quantities = {line.sku_id: line.quantity for line in draft.lines}

    noted = None
    if draft.tallies:
        # The buyers' counts first (tallies.py): a refusal reserves nothing.
        noted = await _raise_tallies(session, draft, order_id)
    if coupon is not None:
        if coupon.single_use and not await session.fetch(CLAIM_CODE_PG, coupon.code_id, order_id):
            raise _Refused(refused("couponCode", USED.message, USED.code))
        if not await session.fetch(COUNT_CAMPAIGN_PG, coupon.campaign_id, order_id, coupon.total, coupon.code_id, now):
            raise _Refused(refused("couponCode", SPENT.message, SPENT.code))
    # Quotas, then stock, each in SKU order (see reservation.reserve()): concurrent orders
    # naming the same SKUs queue on their rows in one order instead of deadlocking.
    for sku_id in sorted(capped):
        if await take_quota(session, lines[sku_id], sku_id, quantities[sku_id], draft.channel_id) < quantities[sku_id]:
            message = "the channel's quota for this SKU is used up"
            raise _Refused(refused(f"lines.{draft.position[sku_id]}.quantity", message, "QUOTA_EXCEEDED"))
    for sku_id in sorted(lines):
        sku, quantity = draft.skus[sku_id], quantities[sku_id]
        if sku.kind is SkuKind.DIRECT_RECHARGE:
            taken = await take_counter(session, lines[sku_id], sku_id, quantity)
        else:
            taken = len(await session.fetch(TAKE_CODES, lines[sku_id], sku_id, quantity, now))
        if taken < quantity:
            message = "not enough stock for this quantity"
            placed = refused(f"lines.{draft.position[sku_id]}.quantity", message, "OUT_OF_STOCK")
            # None left at all (a counter refusing one unit, a pool without a code to lock):
            # the sold-out gate may close. A counter refusing more units may still sell fewer.
            empty = taken == 0 and (sku.kind is SkuKind.CARD_CODE or quantity == 1)
            raise _Refused(placed, sold_out=sku_id if empty else None)
    return order_id, lines, noted


async def _raise_tallies(session: Session, draft: Draft, order_id: int) -> list[list[int]]:
    wanted = merged(draft.tallies)
    raised = await session.fetch(
        RAISE_TALLIES,
        [t.scope for t in wanted], [t.buyer for t in wanted], [t.units for t in wanted], [t.cap for t in wanted],
    )
    ids = {(row["scope"], row["buyer"]): row["id"] for row in raised}
    over: Tally | None = next((tally for tally in wanted if tally.key not in ids), None)
    if over is not None:
        raise _Refused(limit_refusal(breach_of(over, draft.limits), draft.lines, draft.position))
    noted = [[ids[t.key], t.units, int(t.held)] for t in wanted]
    await session.execute(NOTE_TALLIES, order_id, orjson.dumps(noted).decode())
    return noted


def _why(status: OrderStatus, verdict: Verdict) -> str:
    """The reason of the order's second event."""
    if status is OrderStatus.REVIEW:
        return "held for review: " + ", ".join(reason.rule for reason in verdict.reasons)
    return "no risk rules matched"


def _reasons(verdict: Verdict) -> str:
    """The verdict's reasons as stored (JSON)."""
    return orjson.dumps([
        {"rule": r.rule, "observed": r.observed, "threshold": r.threshold, "action": r.action.value, "score": r.score}
        for r in verdict.reasons
    ]).decode()


# One round trip (migrations/versions/0037_order_placement_function.py): on its own, so
# PostgreSQL makes the call one transaction, rolled back whole by any refusal it raises.
PLACE_ORDER = (
    "SELECT o_order, o_line, o_sku, o_tallies FROM quanyi_place_order_v1("
    + ", ".join(f"${n}" for n in range(1, 29))
    + ")"
)
LIMIT_FULL, QUOTA_USED_UP, NO_STOCK = "QY001", "QY002", "QY003"


async def _call(
    driver: Driver, draft: Draft, command: PlaceOrder, actor: str, number: str, status: OrderStatus,
    expires_at: datetime, now: datetime,
) -> tuple[int, dict[int, int], list[list[int]] | None]:
    """A coupon-free order in one call of the placement function: the same rows and rules as
    _write, refusals raised by the function and answered here."""
    buyer, verdict = command.buyer, draft.verdict
    wanted = merged(draft.tallies) if draft.tallies else []
    try:
        rows = await driver.fetch(
            PLACE_ORDER,
            number, draft.channel_id, draft.key, status.value, draft.currency, draft.total.minor,
            buyer.phone, buyer.email, buyer.recharge_account, buyer.device_id, command.client_ip, actor,
            now, expires_at, _why(status, verdict)[:500],
            [line.sku_id for line in draft.lines], [line.quantity for line in draft.lines],
            [unit.minor for unit in draft.units],
            [sku_id for sku_id, sku in draft.skus.items() if sku.kind is SkuKind.DIRECT_RECHARGE],
            verdict.decision.value, verdict.score, _reasons(verdict), orjson.dumps(facts_record(draft.facts)).decode(),
            [t.scope for t in wanted], [t.buyer for t in wanted], [t.units for t in wanted],
            [t.cap for t in wanted], [int(t.held) for t in wanted],
        )
    except asyncpg.PostgresError as error:
        raise _refusal(error, draft, wanted) from None
    noted = orjson.loads(rows[0]["o_tallies"]) if rows[0]["o_tallies"] is not None else None
    return rows[0]["o_order"], {row["o_sku"]: row["o_line"] for row in rows}, noted


def _refusal(error: asyncpg.PostgresError, draft: Draft, wanted: list[Tally]) -> Exception:
    """What the function's refusal tells the buyer; any other error as it came."""
    code, detail = error.sqlstate, getattr(error, "detail", None) or ""
    if code == LIMIT_FULL:
        return _Refused(limit_refusal(breach_of(wanted[int(detail) - 1], draft.limits), draft.lines, draft.position))
    if code == QUOTA_USED_UP:
        at = draft.position[int(detail)]
        return _Refused(refused(f"lines.{at}.quantity", "the channel's quota for this SKU is used up", "QUOTA_EXCEEDED"))
    if code == NO_STOCK:
        sku_id, taken = (int(part) for part in detail.split(":"))
        quantity = next(line.quantity for line in draft.lines if line.sku_id == sku_id)
        placed = refused(f"lines.{draft.position[sku_id]}.quantity", "not enough stock for this quantity", "OUT_OF_STOCK")
        # None left at all (a counter refusing one unit, a pool without a code to lock):
        # the sold-out gate may close. A counter refusing more units may still sell fewer.
        empty = taken == 0 and (draft.skus[sku_id].kind is SkuKind.CARD_CODE or quantity == 1)
        return _Refused(placed, sold_out=sku_id if empty else None)
    return error
