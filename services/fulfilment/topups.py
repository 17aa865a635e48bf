"""Direct top-ups through suppliers: submit, await, query, fail over; never credit twice.

Each TopUpTask moves by conditional UPDATEs on (status, checks), so a worker whose view is
stale (another worker, a callback) changes nothing. No transaction is open while a
supplier is being called. The rules that keep a buyer from being credited twice:

- a submission is announced (NEW -> SUBMITTING) and committed before it is sent, so a
  crash mid-call leaves a task that is queried, not blindly resubmitted;
- an answer we cannot trust (timeout, 5xx) is UNKNOWN: the task stays SUBMITTING and is
  queried; only NOT_FOUND lets us resubmit, with the same request_id, to the same supplier;
- the next supplier is tried only after a definitive FAILED from the current one.

A supplier without a usable connection (no base URL or secret, an adapter kind this
gateway lacks) is passed over for the next one. When none of the suppliers a top-up may
still try can be reached, it waits for an operator to connect one, looking again every
CONNECTION_RECHECK, for at most `connection_wait`; then it fails and the line is refunded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from domain.money import Money
from models import (
    OrderLine,
    Sku,
    SkuSupplier,
    Supplier,
    SupplierAttempt,
    TopUpTask,
)
from services.core import telemetry
from services.core.database import Database, rows_changed
from services.fulfilment.supplier_health import SupplierHealth
from services.fulfilment.supplier_registry import SupplierRegistry
from services.inventory.slots import sell_held
from services.webhooks.platform_events import supplier_failing
from suppliers.base import Outcome, Result, TopUp

log = logging.getLogger("quanyi.topup")

NEW, SUBMITTING, PENDING, SUCCEEDED, FAILED, CANCELLED = "NEW", "SUBMITTING", "PENDING", "SUCCEEDED", "FAILED", "CANCELLED"
OPEN = (NEW, SUBMITTING, PENDING)
SKIP = "SKIP"  # a supplier passed over for want of connection settings: nothing was exchanged
WAIT = "WAIT"  # no supplier left can be reached: the task waits for one (nothing exchanged or recorded)
AWAITING = (SUBMITTING, PENDING)


# How often a top-up waiting for a supplier it can reach looks again.
CONNECTION_RECHECK = timedelta(seconds=15)
DEFAULT_CONNECTION_WAIT = timedelta(minutes=15)


def poll_delay(checks: int) -> float:
    """Seconds before querying a pending top-up again: 1, 2, 4 ... at most 60."""
    return float(min(60, 2 ** min(checks, 6)))


@dataclass(frozen=True, slots=True)
class Exchange:
    """One exchange with a supplier about a task: what was asked (SUBMIT, QUERY, or SKIP when
    nothing could be asked) and what it answered."""

    supplier: Supplier
    action: str
    result: Result


@dataclass(frozen=True, slots=True)
class Plan:
    """What one top-up needs to be sent: the task as read, and where it goes."""

    task: TopUpTask
    sku: Sku
    account: str
    suppliers: list[Supplier]
    announced: bool = False  # marked SUBMITTING in a transaction that has committed: send it now
    # What each supplier (by id) calls the product, where that is not the SKU's code.
    product_codes: Mapping[int, str] = field(default_factory=dict)


async def suppliers_of(session: AsyncSession, sku_id: int) -> list[Supplier]:
    """The SKU's active suppliers, first priority first."""
    return list(
        await session.scalars(
            select(Supplier)
            .join(SkuSupplier, SkuSupplier.supplier_id == Supplier.id)
            .where(SkuSupplier.sku_id == sku_id, Supplier.active.is_(True))
            .order_by(SkuSupplier.priority)
        )
    )


async def suppliers_for(session: AsyncSession, sku_ids: set[int]) -> dict[int, list[tuple[Supplier, str | None]]]:
    """Each SKU's active suppliers with their own product codes, first priority first, in one read."""
    found: dict[int, list[tuple[Supplier, str | None]]] = {}
    rows = await session.execute(_OFFERS, {"skus": list(sku_ids)})
    for sku_id, supplier, product_code in rows:
        found.setdefault(sku_id, []).append((supplier, product_code))
    return found


_OFFERS = (
    select(SkuSupplier.sku_id, Supplier, SkuSupplier.product_code)
    .join(Supplier, Supplier.id == SkuSupplier.supplier_id)
    .where(SkuSupplier.sku_id.in_(bindparam("skus", expanding=True)), Supplier.active.is_(True))
    .order_by(SkuSupplier.sku_id, SkuSupplier.priority)
)


class TopUps:
    def __init__(self, db: Database, registry: SupplierRegistry, callback_base: str | None,
                 clock: Callable[[], datetime], health: SupplierHealth | None = None, *,
                 connection_wait: timedelta = DEFAULT_CONNECTION_WAIT) -> None:
        self._db = db
        self._registry = registry
        self._callback_base = callback_base.rstrip("/") if callback_base else None
        self._clock = clock
        self.health = health or SupplierHealth()
        self._connection_wait = connection_wait

    def _held(self, plan: Plan, task: TopUpTask) -> float:
        """Seconds a NEW task waits because its supplier looks down (0: send it)."""
        if task.supplier_index >= len(plan.suppliers):
            return 0.0
        return self.health.wait(plan.suppliers[task.supplier_index].code)

    async def announce(self, session: AsyncSession, plan: Plan, now: datetime) -> Plan:
        """Mark a NEW task SUBMITTING in the caller's transaction (one fewer of its own): once
        that commits, `advance` sends it at once. Unchanged when it cannot be sent now."""
        task = plan.task
        if task.status != NEW or task.supplier_index >= len(plan.suppliers):
            return plan
        if task.next_check_at is not None and task.next_check_at > now:
            return plan  # waiting for a supplier it can reach: not yet
        if self.health.down(plan.suppliers[task.supplier_index].code):
            return plan  # `advance` decides whether it waits or is this supplier's probe
        # No adapter lookup here: it may read with a connection of its own, and this one holds
        # the order's lock. A supplier without connection settings is skipped at the send.
        supplier = plan.suppliers[task.supplier_index]
        if not await _conditional(session, task, _submitting(supplier, now), now):
            return plan
        return replace(plan, announced=True)

    async def advance(self, plan: Plan, *, steps: int = 6) -> None:
        """Take the task as far as it can go now: submit, query, fail over. Returns when it
        is decided, or waits on a supplier (callback or a later query)."""
        task, announced = plan.task, plan.announced
        for _ in range(steps):
            now = self._clock()
            if announced:
                announced = False
                moved = await self._step(plan, task, plan.suppliers[task.supplier_index], now, announced=True)
            elif task.status not in OPEN:
                return
            elif task.next_check_at is not None and task.next_check_at > now:
                return  # a supplier has it, or it waits for one it can reach
            elif not plan.suppliers and task.status == NEW and self._may_wait(task, now):
                # A SKU with no supplier at all: an operator may still name one.
                await self._conditional(task, self._wait(task, now, "none: its SKU has no supplier"), now)
                return
            elif task.status == NEW and (held := self._held(plan, task)) > 0:
                await self._conditional(task, {"next_check_at": now + timedelta(seconds=held)}, now)
                return
            elif task.supplier_index >= len(plan.suppliers):
                moved = await self._conditional(task, {"status": FAILED}, now)
                if moved:
                    telemetry.topup_exhausted()
            else:
                moved = await self._step(plan, task, plan.suppliers[task.supplier_index], now)
            if not moved:
                # Moved by someone else meanwhile (a callback, another worker): read where it is.
                async with self._db.fresh_sessions() as session:
                    fresh = await session.get(TopUpTask, task.id)
                if fresh is None:
                    return
                task = fresh

    def _may_wait(self, task: TopUpTask, now: datetime) -> bool:
        """Whether the task's wait for a supplier it can reach has not run out."""
        return now - (task.waiting_since or now) < self._connection_wait

    def _wait(self, task: TopUpTask, now: datetime, suppliers: str) -> dict[str, object]:
        """The task's values while it waits (NEW: nothing was sent), to look again soon."""
        since = task.waiting_since or now
        if task.waiting_since is None:
            log.warning("top-up %s waits up to %d s for a supplier with a usable connection (next in line: %s)",
                        task.request_id, self._connection_wait.total_seconds(), suppliers)
            telemetry.topup_waiting()
        retry = max(timedelta(0), min(CONNECTION_RECHECK, self._connection_wait - (now - since)))
        return {"status": NEW, "waiting_since": since, "next_check_at": now + retry}

    async def _unreachable(self, plan: Plan, task: TopUpTask) -> bool:
        """None of the suppliers the task may still try has a usable connection."""
        for supplier in plan.suppliers[task.supplier_index:]:
            if await self._registry.adapter(supplier.id) is not None:
                return False
        return True

    async def _step(self, plan: Plan, task: TopUpTask, supplier: Supplier, now: datetime, *,
                    announced: bool = False) -> bool:
        """One exchange with `supplier`; False if the task was not as read (nothing written).
        `announced`: the task is SUBMITTING by our committed mark and not sent yet."""
        if task.status == NEW and not announced and await self._registry.adapter(supplier.id) is not None:
            # Announced before it is sent: after a crash the task is queried, never resent blindly.
            if not await self._conditional(task, _submitting(supplier, now), now):
                return False
            announced = True
        exchange = await self.exchange(plan, task, supplier, announced=announced)
        async with self._db.sessions() as session, session.begin():
            return await self.record(session, task, exchange, self._clock())

    async def exchange(self, plan: Plan, task: TopUpTask, supplier: Supplier, *, announced: bool) -> Exchange:
        """Ask `supplier` about the task, outside any transaction: submit it when it is
        announced (SUBMITTING by a committed mark, not sent yet), else query it. A supplier
        without connection settings is a SKIP: nothing is exchanged."""
        adapter = await self._registry.adapter(supplier.id)
        if adapter is None:
            # Nothing was sent yet (NEW, or SUBMITTING by our own mark): when no supplier left
            # can be reached, the task waits for an operator to connect one, for a bounded time.
            unsent = announced or task.status == NEW
            if unsent and self._may_wait(task, self._clock()) and await self._unreachable(plan, task):
                return Exchange(supplier, WAIT, Result(Outcome.PENDING, task.request_id, message="no supplier it can reach"))
            return Exchange(supplier, SKIP, Result(Outcome.FAILED, task.request_id, message="no connection settings"))
        if announced:
            result = await _call(adapter.submit(self._topup(plan, supplier)), task.request_id, supplier.code, "submit")
            await self._heard(supplier, result)
            return Exchange(supplier, "SUBMIT", result)
        result = await _call(adapter.query(task.request_id), task.request_id, supplier.code, "query")
        await self._heard(supplier, result)
        return Exchange(supplier, "QUERY", result)

    async def _heard(self, supplier: Supplier, result: Result) -> None:
        """Count the supplier's answer; the one that takes it for down is told to webhooks
        (in a transaction of its own: the change is this process's view, not a row)."""
        if self.health.record(supplier.code, result.outcome):
            async with self._db.sessions() as session, session.begin():
                await supplier_failing(session, supplier.code, supplier.name, self._clock())

    async def record(self, session: AsyncSession, task: TopUpTask, exchange: Exchange, now: datetime) -> bool:
        """The exchange's answer, in the caller's transaction: the task moved if it is still as
        read (the task follows in memory), the exchange recorded either way. False if it had moved."""
        if exchange.action == WAIT:
            return await _conditional(session, task, self._wait(task, now, exchange.supplier.code), now)
        values = transition(task, exchange.result, now)
        if exchange.action != SKIP:
            values["waiting_since"] = None  # it reached a supplier: no longer waiting for one
        moved = await apply(session, task.id, task.request_id, exchange.supplier.id, exchange.action, exchange.result,
                            values, now, statuses=(task.status,), checks=task.checks)
        if moved:
            _moved(task, values, now)
            if exchange.action == SKIP:
                telemetry.supplier_failover(exchange.supplier.code, "unconfigured")
            elif exchange.result.outcome is Outcome.FAILED:
                telemetry.supplier_failover(exchange.supplier.code, "failed")
        return moved

    def _topup(self, plan: Plan, supplier: Supplier) -> TopUp:
        callback = f"{self._callback_base}/webhooks/supplier/{supplier.code}" if self._callback_base else None
        return TopUp(
            request_id=plan.task.request_id, product=plan.product_codes.get(supplier.id, plan.sku.code), account=plan.account,
            quantity=plan.task.units, face_value=Money(plan.sku.face_value_fen, plan.sku.currency),
            callback_url=callback,
        )

    async def _conditional(self, task: TopUpTask, values: dict[str, object], now: datetime) -> bool:
        async with self._db.sessions() as session, session.begin():
            return await _conditional(session, task, values, now)


def _submitting(supplier: Supplier, now: datetime) -> dict[str, object]:
    """The mark of a submission about to be sent: queried, not resent, if no answer is recorded."""
    wait = timedelta(seconds=supplier.timeout_seconds + 1)
    return {"status": SUBMITTING, "supplier_id": supplier.id, "next_check_at": now + wait}


async def _conditional(session: AsyncSession, task: TopUpTask, values: dict[str, object], now: datetime) -> bool:
    """Move the task if it is still as read (status and checks); the task follows in memory."""
    connection = await session.connection()  # Core on the session's transaction: no ORM layer
    result = await connection.execute(
        update(_TASK).where(_TASK.c.id == task.id, _TASK.c.status == task.status, _TASK.c.checks == task.checks)
        .values(**values, checks=_TASK.c.checks + 1, updated_at=now)
    )
    if rows_changed(result) != 1:
        return False
    _moved(task, values, now)
    return True


def _moved(task: TopUpTask, values: dict[str, object], now: datetime) -> None:
    """The task as our conditional UPDATE left it, without reading it back (recorded as
    loaded: a session holding the task has nothing more to write)."""
    for name, value in values.items():
        set_committed_value(task, name, value)
    set_committed_value(task, "checks", task.checks + 1)
    set_committed_value(task, "updated_at", now)


async def _call(call: object, request_id: str, supplier: str, action: str) -> Result:
    """A supplier call whose failure to answer is UNKNOWN, never an exception for the caller;
    counted and timed by supplier, action and outcome."""
    started = time.perf_counter()
    try:
        result: Result = await call  # type: ignore[misc]
    except Exception as error:  # noqa: BLE001 - any failure to answer means "we do not know"
        result = Result(Outcome.UNKNOWN, request_id, message=type(error).__name__)
    telemetry.supplier_call(supplier, action, result.outcome.value, time.perf_counter() - started)
    return result


def transition(task: TopUpTask, result: Result, now: datetime) -> dict[str, object]:
    """The task's next values for a supplier's answer."""
    if result.outcome is Outcome.SUCCEEDED:
        return {"status": SUCCEEDED, "supplier_reference": result.supplier_reference, "next_check_at": None}
    if result.outcome is Outcome.FAILED:
        # Definitive: the next supplier may be tried (FAILED once none is left).
        return {"status": NEW, "supplier_index": task.supplier_index + 1, "next_check_at": None}
    if result.outcome is Outcome.NOT_FOUND:
        # The supplier never got it: safe to send again, same request_id, same supplier.
        return {"status": NEW, "next_check_at": None}
    delay = poll_delay(task.checks)
    if result.outcome is Outcome.PENDING:
        return {"status": PENDING, "supplier_reference": result.supplier_reference or task.supplier_reference,
                "next_check_at": now + timedelta(seconds=delay)}
    return {"status": SUBMITTING, "next_check_at": now + timedelta(seconds=delay)}  # UNKNOWN: query later


async def apply(
    session: AsyncSession, task_id: int, request_id: str, supplier_id: int, action: str, result: Result,
    values: dict[str, object], now: datetime, *, statuses: tuple[str, ...], checks: int | None,
) -> bool:
    """Move the task if it is still as expected, record the exchange, and on success take the
    counter stock. Returns False when the task moved on meanwhile: the exchange is recorded
    all the same (not applied), since it happened; only a SKIP, which exchanged nothing, is not."""
    conditions = [_TASK.c.id == task_id, _TASK.c.status.in_(statuses)]
    if checks is not None:
        conditions.append(_TASK.c.checks == checks)
    if action == "CALLBACK":
        conditions.append(_TASK.c.supplier_id == supplier_id)
    connection = await session.connection()  # Core on the session's transaction: no ORM layer
    task = (await connection.execute(
        update(_TASK).where(*conditions).values(**values, checks=_TASK.c.checks + 1, updated_at=now)
        .returning(_TASK.c.line_id, _TASK.c.sku_id)
    )).one_or_none()
    if task is None and action == SKIP:
        return False
    await record_exchange(session, task_id, request_id, supplier_id, action, result, now, applied=task is not None)
    if task is None:
        return False
    if values.get("status") == SUCCEEDED:
        await sell_held(connection, task.line_id, task.sku_id)
    return True


# Statements the answer of every top-up sends, built once (their cache keys too).
_TASK = TopUpTask.__table__
_ATTEMPT = insert(SupplierAttempt.__table__)


async def record_exchange(
    session: AsyncSession, task_id: int, request_id: str, supplier_id: int, action: str, result: Result,
    now: datetime, *, applied: bool,
) -> None:
    """The audit row of one exchange with a supplier, in the caller's transaction."""
    await (await session.connection()).execute(_ATTEMPT, {
        "task_id": task_id, "supplier_id": supplier_id, "request_id": request_id, "action": action,
        "outcome": result.outcome.value, "supplier_reference": result.supplier_reference,
        "message": result.message[:500], "applied": applied, "at": now,
    })
    log.info("top-up %s %s at supplier %s: %s%s", request_id, action.lower(), supplier_id, result.outcome.value,
             "" if applied else " (not applied: the task had moved on)")


async def apply_callback(session: AsyncSession, supplier_id: int, result: Result, now: datetime) -> int | None:
    """A verified callback's outcome; returns the order to wake, or None when it changed
    nothing (a repeated callback, a task already decided, PENDING, or not this supplier's
    task). Every callback about a task we know is recorded, applied or not."""
    task = await session.scalar(select(TopUpTask).where(TopUpTask.request_id == result.request_id))
    if task is None:
        log.warning("supplier %s called back about unknown top-up %s", supplier_id, result.request_id)
        return None
    if result.outcome not in (Outcome.SUCCEEDED, Outcome.FAILED):
        # PENDING tells us nothing new.
        await record_exchange(session, task.id, task.request_id, supplier_id, "CALLBACK", result, now, applied=False)
        return None
    if not await apply(session, task.id, task.request_id, supplier_id, "CALLBACK", result, transition(task, result, now),
                       now, statuses=AWAITING, checks=None):
        return None
    if result.outcome is Outcome.FAILED:
        code = await session.scalar(select(Supplier.code).where(Supplier.id == supplier_id)) or str(supplier_id)
        telemetry.after_commit(session, lambda: telemetry.supplier_failover(code, "failed"))
    return await session.scalar(select(OrderLine.order_id).where(OrderLine.id == task.line_id))
