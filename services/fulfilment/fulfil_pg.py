"""A paid one-line direct top-up order, fulfilled on PostgreSQL in two short transactions.

The same rows and rules as the general path in fulfil.py, written as prepared statements
on the driver (services/core/driver.py), for the order a sale brings by the thousand:

1. (BEGIN, START, TASK, COMMIT) PAID -> FULFILLING with its event, read back with its one
   line, the SKU, the channel's commission and the SKU's active suppliers in one statement
   of data-modifying CTEs; then the top-up task, inserted already marked SUBMITTING (the
   general path inserts it NEW and marks it in a second UPDATE). The mark commits before the
   supplier is called: a crash mid-call leaves a task that is queried, never resent blindly.
2. (no transaction) the submission, through the same adapter and health record as the
   general path (`TopUps.exchange`).
3. (BEGIN, ANSWER, COMMIT) when the supplier credited the buyer: the task's move and the
   exchange's record, the held counter units sold (from the slots they were held in), the line's outcome, its ledger posting,
   DELIVERED with its event, the inbox notice, the job's completion and its attempt row,
   all in one statement, each part conditional on the one before, so that it writes all of
   it or (a callback or another worker came first, the lease was lost) nothing we keep:
   then it rolls back and the general path takes over from the rows as they are.

Webhooks and marketplace delivery reports are queued in the transactions of these changes
on the general path; this path has none of them, so it runs only while no webhook endpoint
is enabled (services/webhooks/audience.py) and no channel has a marketplace
(services/marketplace_events/connected.py), both known per process. Anything else
(another kind of line, more than one line, an order that is no longer PAID, a supplier
that looks down, an answer other than success, a buyer an SMS or email sender would also
tell) goes to the general path, which picks up from whatever step committed:
every step of it reads the order again and moves only what is still as it read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson

from broker import Broker
from domain import ledger
from domain.catalog import SkuKind
from domain.money import Money
from domain.orders import OrderStatus
from models import Order, Sku, Supplier, TopUpTask
from services.core import telemetry
from services.core.database import Database
from services.core.driver import Driver
from services.core.events import stock_events
from services.core.worker import JobRun
from services.fulfilment.followups import delivered_notice
from services.fulfilment.senders import INBOX, Message, Sender
from services.fulfilment.topups import SUBMITTING, Exchange, Plan, TopUps
from services.orders.events import ORDER_TOPIC, ORDERS_TOPIC, status_message
from services.marketplace_events.connected import CONNECTED
from services.webhooks.audience import AUDIENCES
from suppliers.base import Outcome

log = logging.getLogger("quanyi.fulfilment")

ACTOR = "fulfilment"

# One statement, so it needs no transaction of its own: all of it or none. The task is
# marked SUBMITTING for the first active supplier unless that one is taken for down ($4),
# the general path's rule (TopUps.announce); otherwise it is inserted NEW for the general
# path to send or hold. Suppliers are in priority order, by id where priorities tie.
START = """
WITH moved AS (
  UPDATE "order" SET status = 'FULFILLING', updated_at = $2
  WHERE id = $1 AND status = 'PAID'
    AND (SELECT count(*) FROM order_line WHERE order_id = $1) = 1
    AND EXISTS (SELECT 1 FROM order_line JOIN sku ON sku.id = order_line.sku_id
                WHERE order_line.order_id = $1 AND sku.kind = 'DIRECT_RECHARGE'
                  AND order_line.outcome IS NULL AND order_line.presale_quantity = 0)
    -- Units held in several slots are sold in slot order, by the general path.
    AND (SELECT count(*) FROM allocation JOIN order_line ON order_line.id = allocation.line_id
         WHERE order_line.order_id = $1 AND allocation.source = 'COUNTER') <= 1
  RETURNING id, number, channel_id, currency, buyer_phone, buyer_email, recharge_account
), event AS (
  INSERT INTO order_event (order_id, actor, from_status, to_status, reason, at)
  SELECT id, $3, 'PAID', 'FULFILLING', 'fulfilment started', $2 FROM moved
), line AS (
  SELECT order_line.id, order_line.sku_id, order_line.quantity, order_line.unit_price_fen
  FROM order_line JOIN moved ON order_line.order_id = moved.id
), offer AS (
  SELECT supplier.id, supplier.code, supplier.timeout_seconds, sku_supplier.product_code, sku_supplier.cost_fen,
         row_number() OVER (ORDER BY sku_supplier.priority, supplier.id) AS n
  FROM sku_supplier JOIN supplier ON supplier.id = sku_supplier.supplier_id
  WHERE sku_supplier.sku_id = (SELECT sku_id FROM line) AND supplier.active
), task AS (
  INSERT INTO topup_task (line_id, sku_id, units, request_id, status, supplier_index, supplier_id, checks,
                          next_check_at, updated_at)
  SELECT line.id, line.sku_id, line.quantity, moved.number, CASE WHEN sent THEN 'SUBMITTING' ELSE 'NEW' END, 0,
         CASE WHEN sent THEN first.id END, CASE WHEN sent THEN 1 ELSE 0 END,
         CASE WHEN sent THEN $2 + make_interval(secs => first.timeout_seconds + 1) END, $2
  FROM moved CROSS JOIN line LEFT JOIN offer AS first ON first.n = 1
  CROSS JOIN LATERAL (SELECT first.id IS NOT NULL AND first.code <> ALL($4::text[]) AS sent) AS decided
  RETURNING id, status, supplier_id, checks, next_check_at
)
SELECT moved.*, line.id AS line_id, line.sku_id, line.quantity, line.unit_price_fen, sku.code AS sku_code,
       sku.face_value_fen, sku.currency AS sku_currency, sku.supplier_cost_fen, channel.commission_bp,
       task.id AS task_id, task.status AS task_status, task.supplier_id AS task_supplier, task.checks,
       task.next_check_at,
       (SELECT json_agg(json_build_array(id, code, timeout_seconds, product_code, cost_fen) ORDER BY n)
        FROM offer) AS offers
FROM moved CROSS JOIN line CROSS JOIN task
JOIN sku ON sku.id = line.sku_id
JOIN channel ON channel.id = moved.channel_id
"""

# Each part waits for the one before through its RETURNING: nothing moves unless the task
# was still SUBMITTING as we marked it, the line still undecided, the order still
# FULFILLING and the job still ours. The exchange is recorded either way (as applied or not),
# as the general path does, but the caller rolls back unless everything moved.
ANSWER = """
WITH task AS (
  UPDATE topup_task SET status = 'SUCCEEDED', supplier_reference = $3, next_check_at = NULL, waiting_since = NULL,
                        checks = checks + 1, updated_at = $2
  WHERE id = $1 AND status = 'SUBMITTING' AND checks = $4
  RETURNING line_id
), attempt AS (
  INSERT INTO supplier_attempt (task_id, supplier_id, request_id, action, outcome, supplier_reference, message,
                                applied, at)
  SELECT $1, $5, $6, 'SUBMIT', 'SUCCEEDED', $3, $7, EXISTS (SELECT 1 FROM task), $2
), sold AS (
  UPDATE allocation SET state = 'SOLD'
  WHERE line_id = (SELECT line_id FROM task) AND sku_id = $8 AND source = 'COUNTER' AND state = 'HELD'
  RETURNING slot, units
), stock AS (
  UPDATE stock_level SET on_hand = on_hand - taken.units, reserved = reserved - taken.units
  FROM (SELECT COALESCE(slot, 0) AS slot, sum(units) AS units FROM sold GROUP BY 1) AS taken
  WHERE stock_level.sku_id = $8 AND stock_level.slot = taken.slot
    AND stock_level.reserved >= taken.units AND stock_level.on_hand >= taken.units
), line AS (
  UPDATE order_line SET outcome = 'DELIVERED', supplier_id = $5
  WHERE id = (SELECT line_id FROM task) AND outcome IS NULL
  RETURNING id
), posting AS (
  INSERT INTO ledger_transaction (key, kind, at, actor)
  SELECT 'delivery:' || line.id, 'DELIVERY', $2, 'system' FROM line
  ON CONFLICT (key) DO NOTHING
  RETURNING id
), entries AS (
  INSERT INTO ledger_entry (transaction_id, kind, account, channel_id, supplier_id, order_id, line_id, amount_fen,
                            currency, at)
  SELECT posting.id, 'DELIVERY', entry.account, $10, $5, $9, (SELECT id FROM line), entry.amount_fen, $11, $2
  FROM posting, unnest($12::text[], $13::bigint[]) WITH ORDINALITY AS entry(account, amount_fen, n)
  ORDER BY entry.n
), moved AS (
  UPDATE "order" SET status = 'DELIVERED', updated_at = $2
  WHERE id = $9 AND status = 'FULFILLING' AND EXISTS (SELECT 1 FROM line)
  RETURNING id
), event AS (
  INSERT INTO order_event (order_id, actor, from_status, to_status, reason, at)
  SELECT id, $14, 'FULFILLING', 'DELIVERED', 'every line delivered', $2 FROM moved
), inbox AS (
  INSERT INTO inbox_message (order_id, line_id, subject, body, created_at)
  SELECT id, NULL, $15::text, $16::text, $2 FROM moved WHERE $15::text IS NOT NULL
), done AS (
  UPDATE job SET status = 'DONE', done_at = $2, lease = NULL, locked_until = NULL, attempts = attempts + 1,
                 last_error = NULL
  WHERE id = $17 AND lease = $18 AND status = 'READY' AND EXISTS (SELECT 1 FROM moved)
  RETURNING id
), run AS (
  INSERT INTO job_attempt (job_id, worker, started_at, finished_at, outcome, error)
  SELECT id, $19, $20, $2, 'DONE', NULL FROM done
)
SELECT (SELECT count(*) FROM task) AS task, (SELECT count(*) FROM done) AS done
"""


@dataclass(frozen=True, slots=True)
class Unrecorded:
    """A supplier's answer this path got and did not write: the general path records it."""

    task: TopUpTask
    exchange: Exchange


class _Undone(Exception):
    """The answer's statement found something moved meanwhile: roll it all back."""


class FastFulfilment:
    """The PostgreSQL path of a FULFIL job; `fulfil` returns False where the general path
    must go on (from whatever this path committed)."""

    def __init__(self, db: Database, topups: TopUps, senders: list[Sender], broker: Broker,
                 clock: Callable[[], datetime]) -> None:
        self._db, self._topups, self._senders, self._broker, self._clock = db, topups, senders, broker, clock

    async def fulfil(self, driver: Driver, run: JobRun) -> Unrecorded | None:
        """Settles the job when it can (`run.settled`); otherwise the general path goes on,
        first recording the supplier's answer this path got and did not keep, if any."""
        if not await self._unheard():
            return None  # webhooks listen: the general path tells them
        if not self._topups.health.all_well():
            # A supplier failing or down: holding, probing and failing over are the general
            # path's (tests/e2e/test_supplier_outage.py); this path is for suppliers that answer.
            return None
        order_id, now = run.job.order_id or 0, self._clock()
        row = await driver.fetchrow(START, order_id, now, ACTOR, self._topups.health.down_now())
        if row is None:
            return None  # not a one-line top-up that is PAID: the general path
        telemetry.order_transitions_committed([(OrderStatus.PAID, OrderStatus.FULFILLING)])
        order = Order(id=row["id"], number=row["number"], status=OrderStatus.FULFILLING,
                      buyer_phone=row["buyer_phone"], buyer_email=row["buyer_email"])
        await self._announce(order, OrderStatus.PAID, now)
        if row["task_status"] != SUBMITTING:
            return None  # no supplier, or the first is down: the general path holds or sends it
        offers = orjson.loads(row["offers"])
        suppliers = [Supplier(id=i, code=code, timeout_seconds=timeout) for i, code, timeout, _, _ in offers]
        first = suppliers[0]
        task = TopUpTask(
            id=row["task_id"], line_id=row["line_id"], sku_id=row["sku_id"], units=row["quantity"],
            request_id=row["number"], status=SUBMITTING, supplier_index=0, supplier_id=first.id,
            checks=row["checks"], next_check_at=row["next_check_at"], updated_at=now, supplier_reference=None,
            waiting_since=None,
        )
        sku = Sku(id=row["sku_id"], code=row["sku_code"], kind=SkuKind.DIRECT_RECHARGE,
                  face_value_fen=row["face_value_fen"], currency=row["sku_currency"])
        plan = Plan(task, sku, row["recharge_account"] or row["buyer_phone"] or "", suppliers, announced=True,
                    product_codes={i: code for i, _, _, code, _ in offers if code})
        exchange = await self._topups.exchange(plan, task, first, announced=True)
        probe = Message(order.id, order.number, None, "", "", phone=order.buyer_phone, email=order.buyer_email)
        told = [sender for sender in self._senders if sender.accepts(probe)]
        if exchange.action != "SUBMIT" or exchange.result.outcome is not Outcome.SUCCEEDED or any(
                sender.channel != INBOX for sender in told):
            return Unrecorded(task, exchange)
        now = self._clock()
        own_cost = offers[0][4]
        unit_cost = own_cost if own_cost is not None else row["supplier_cost_fen"]
        currency = row["currency"]
        figures = ledger.line_figures(Money(row["unit_price_fen"], currency), Money(unit_cost, currency),
                                      row["quantity"], row["commission_bp"])
        postings = ledger.delivery(figures)
        order.status = OrderStatus.DELIVERED
        notice = delivered_notice(order) if told else None
        result = exchange.result
        try:
            async with driver.transaction() as session:
                answered = await session.fetchrow(
                    ANSWER, task.id, now, result.supplier_reference, task.checks, first.id, task.request_id,
                    result.message[:500], row["sku_id"], order.id, row["channel_id"], currency,
                    [p.account.name for p in postings], [p.amount.minor for p in postings], ACTOR,
                    notice.subject[:200] if notice else None, notice.body[:2000] if notice else None,
                    run.job.id, run.job.lease, run.worker[:64], run.job.started_at,
                )
                if answered is None or answered["task"] != 1 or answered["done"] != 1:
                    raise _Undone
        except _Undone:
            return Unrecorded(task, exchange)
        run.settled, run.outcome = True, "done"
        telemetry.order_transitions_committed([(OrderStatus.FULFILLING, OrderStatus.DELIVERED)])
        log.info("top-up %s submit at supplier %s: %s", task.request_id, first.id, result.outcome.value)
        log.info("order %s %s", order.number, OrderStatus.DELIVERED.value)
        await self._announce(order, OrderStatus.FULFILLING, now)
        for topic, message in stock_events([sku.id], by_orders=True):
            await self._broker.publish(topic, message)
        return None

    async def _unheard(self) -> bool:
        """Whether no channel has a marketplace (as the background read last found) and no
        webhook endpoint is enabled (read again at most every few seconds)."""
        if not CONNECTED.none():  # connected, or not known yet (read in the background)
            return False
        silent = AUDIENCES.silent()
        if silent is None:
            async with self._db.fresh_sessions() as session:
                await AUDIENCES.of(session, None)
            silent = AUDIENCES.silent()
        return bool(silent)

    async def _announce(self, order: Order, previous: OrderStatus, at: datetime) -> None:
        message = status_message(order, previous, at)
        await self._broker.publish(ORDER_TOPIC.format(number=order.number), message)
        await self._broker.publish(ORDERS_TOPIC, message)
