"""Fulfilling a paid order: codes sold and sent, top-ups run, the outcome decided once.

The FULFIL job of an order runs in three steps, none holding a transaction across a
supplier call:
1. (one transaction) PAID -> FULFILLING; top-up tasks created; code lines sold and delivered;
2. (no transaction) each open top-up advanced through its suppliers (services/fulfilment/topups.py);
3. (one transaction) lines decided from their top-ups; once every line is decided the order
   takes its final status, the refund is recorded, the buyer is notified, and the job is
   finished, all in that transaction. When the answers to the first submissions leave nothing
   more to send, this is the transaction that records them (from the rows read in step 1).

On PostgreSQL a paid one-line top-up, the order a sale brings by the thousand, takes a
shorter path first (services/fulfilment/fulfil_pg.py: two statements and the supplier call);
whatever it cannot finish, the steps above take up from what it committed.

Final status: every line delivered -> DELIVERED; every line refunded -> REFUNDED (its
coupon's use given back); some of each -> PARTIALLY_DELIVERED with a refund of the refunded
lines. A bundle line is all or
nothing: its top-ups run one after another, its codes are sold and shown only after all of
them succeeded, and if one fails the whole line is refunded and its held codes go back to
stock (a component top-up that had already succeeded is not taken back from the supplier;
that cost is the platform's).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from broker import Broker
from domain.catalog import SkuKind
from domain.orders import OrderStatus
from models import Allocation, BundleItem, Order, OrderLine, Sku, TopUpTask
from services.campaigns import redemption
from services.campaigns.coupons import campaign_scope
from services.core import jobs
from services.core.database import Database, rows_changed
from services.core.events import stock_event
from services.core.secret_box import SecretBox
from services.core.unit_of_work import UnitOfWork
from services.core.worker import Handler, JobRun
from services.fulfilment import delivery, hooks
from services.fulfilment.followups import Followups, notice
from services.fulfilment.fulfil_pg import FastFulfilment
from services.fulfilment.senders import Message, Sender
from services.fulfilment.topups import (
    CANCELLED,
    FAILED,
    NEW,
    OPEN,
    SUCCEEDED,
    Plan,
    TopUps,
    suppliers_for,
    suppliers_of,
)
from services.inventory import quotas
from services.inventory.reservation import line_skus, release
from services.orders.events import move
from services.orders import tallies
from services.orders.lifecycle import announce
from services.payments import refunds
from services.webhooks.order_events import order_refunded
from services.webhooks.platform_events import stock_sold

log = logging.getLogger("quanyi.fulfilment")

DELIVERED, REFUNDED = "DELIVERED", "REFUNDED"
CODE_KINDS = (SkuKind.CARD_CODE, SkuKind.SERIAL)
HOLDERS = (SkuKind.BUNDLE, SkuKind.BLIND_BOX)  # lines that hold other SKUs' stock
ACTOR = "fulfilment"
PRESALE_WAIT = 3600.0  # a line waiting for codes is woken by the import; this is the fallback


def _now() -> datetime:
    return datetime.now(UTC)


class Fulfilment:
    def __init__(
        self, db: Database, broker: Broker, topups: TopUps, senders: Sequence[Sender], box: SecretBox,
        provider_refunds: refunds.Refunds, clock: Callable[[], datetime] = _now, refund_check_seconds: float = 600.0,
    ) -> None:
        self._db, self._broker, self._topups = db, broker, topups
        self._refund_check = refund_check_seconds
        self._senders = list(senders)
        self._box, self._refunds, self._clock = box, provider_refunds, clock
        self._fast = FastFulfilment(db, topups, self._senders, broker, clock)

    def handlers(self) -> dict[str, Handler]:
        followups = Followups(self._db, self._senders, self._box, self._refunds, self._clock, self._refund_check)
        return {jobs.FULFIL: self.fulfil, **followups.handlers()}

    # --- FULFIL -----------------------------------------------------------------------

    async def fulfil(self, run: JobRun) -> None:
        order_id = run.job.order_id or 0
        driver = self._db.driver
        if driver is not None and driver.enabled:
            # A one-line top-up on PostgreSQL (fulfil_pg.py); the steps below go on from
            # whatever it committed when it could not take the order to its end.
            unrecorded = await self._fast.fulfil(driver, run)
            if run.settled:
                return
            if unrecorded is not None:
                async with run.uow() as uow:
                    await self._topups.record(uow.session, unrecorded.task, unrecorded.exchange, self._clock())
        async with run.uow() as uow:
            now = self._clock()
            order = await _locked(uow.session, order_id)
            if order is None or order.status not in (OrderStatus.PAID, OrderStatus.FULFILLING):
                await run.done(uow, now)
                return
            starting = order.status is OrderStatus.PAID and await move(
                uow.session, order, OrderStatus.FULFILLING, actor=ACTOR, reason="fulfilment started", at=now
            )
            if starting:
                announce(uow, order, OrderStatus.PAID, now)
            lines, skus = await _lines(uow.session, order.id)
            # Tasks are created with the move to FULFILLING: an order that was PAID has none yet.
            tasks = await _plan_topups(uow.session, order, lines, skus, now, existing=not starting)
            for line in lines:
                if line.outcome is None and skus[line.sku_id].kind in CODE_KINDS and line.presale_quantity == 0:
                    await delivery.sell_codes(uow.session, line.id)
                    first = await suppliers_of(uow.session, line.sku_id)
                    await self._delivered(uow, order, line, skus[line.sku_id], first[0].id if first else None, now)
            # Read under the order's lock and sent after the commit: a task that moved meanwhile
            # (a callback) is not moved again, every step being conditional on what was read.
            # Each first submission is marked SUBMITTING here, so this commit comes before the call.
            plans = [await self._topups.announce(uow.session, plan, now)
                     for plan in await _open_plans(uow.session, order, lines, skus, tasks)]
        # The first submissions, sent. Their answers are recorded together, and when they
        # leave nothing to send the lines are decided in that same transaction from the rows
        # in hand: no third transaction, no second read of the order.
        sent = [(plan, await self._topups.exchange(plan, plan.task, plan.suppliers[plan.task.supplier_index],
                                                   announced=True)) for plan in plans if plan.announced]
        if sent:
            async with run.uow() as uow:
                now = self._clock()
                recorded = [await self._topups.record(uow.session, plan.task, exchange, now) for plan, exchange in sent]
                # A task back at NEW (the next supplier, or a resend) is sent below; one moved
                # by someone else (a callback) is read again below.
                if all(recorded) and not any(task.status == NEW for task in tasks):
                    await self._settle(uow, run, order, lines, skus, tasks, now)
            if run.settled:
                return
            plans = [replace(plan, announced=False) for plan in plans]
        for plan in plans:
            await self._topups.advance(plan)
        async with run.uow() as uow:
            now = self._clock()
            order = await _locked(uow.session, order_id)
            if order is None or order.status is not OrderStatus.FULFILLING:
                await run.done(uow, now)
                return
            lines, skus = await _lines(uow.session, order.id)
            tasks = await _tasks(uow.session, [line.id for line in lines])
            await self._settle(uow, run, order, lines, skus, tasks, now)

    async def _settle(self, uow: UnitOfWork, run: JobRun, order: Order, lines: list[OrderLine], skus: dict[int, Sku],
                      tasks: list[TopUpTask], now: datetime) -> None:
        """Decide each undecided line from its top-ups; once every line is decided, the order's
        final status and the job's completion, else the job waits for what is still open."""
        waits: list[float] = []
        for line in lines:
            if line.outcome is not None:
                continue
            if skus[line.sku_id].kind in CODE_KINDS:
                waits.append(PRESALE_WAIT)
                continue
            mine = [task for task in tasks if task.line_id == line.id]
            if any(task.status == FAILED for task in mine):
                await self._refunded(uow, line, now)
            elif all(task.status == SUCCEEDED for task in mine):
                if skus[line.sku_id].kind is not SkuKind.DIRECT_RECHARGE:  # a bundle's codes
                    await delivery.sell_codes(uow.session, line.id)
                await self._delivered(uow, order, line, skus[line.sku_id], mine[0].supplier_id if mine else None, now)
            else:
                waits.extend(_wait(task, now) for task in mine if task.status in OPEN)
        if all(line.outcome is not None for line in lines):
            await self._finish(uow, order, lines, now)
            await run.done(uow, now)
        else:
            await run.later(uow, now, max(0.05, min(waits, default=1.0)))

    async def _delivered(self, uow: UnitOfWork, order: Order, line: OrderLine, sku: Sku, supplier_id: int | None,
                         now: datetime) -> None:
        if not await _decide(uow.session, line, DELIVERED, supplier_id):
            return
        await hooks.line_delivered(uow.session, line.id, supplier_id, now)
        # Its units are sold now (codes here, counter units when their top-up succeeded):
        # live stock views stop counting them as reserved.
        # (A bundle or a blind box draws on its items' stock; any other line on its own SKU's.)
        drawn = await line_skus(uow.session, line.id) if sku.kind in HOLDERS else []
        stock_event(uow, [line.sku_id, *drawn], by_orders=True)
        await stock_sold(uow.session, {sku_id: line.quantity for sku_id in [line.sku_id, *drawn]}, now)
        # A direct top-up line holds no codes; the others send what they sold.
        if sku.kind is not SkuKind.DIRECT_RECHARGE and await delivery.sold_codes_count(uow.session, line.id):
            await delivery.enqueue_delivery(uow.session, order, line.id, self._senders, now=now)
            uow.publish(jobs.JOBS_TOPIC, b"")

    async def _refunded(self, uow: UnitOfWork, line: OrderLine, now: datetime) -> None:
        if not await _decide(uow.session, line, REFUNDED, None):
            return
        await uow.session.execute(
            update(TopUpTask).where(TopUpTask.line_id == line.id, TopUpTask.status.in_(OPEN))
            .values(status=CANCELLED, updated_at=now).execution_options(synchronize_session=False)
        )
        # The quota it took goes back with its stock: the channel sold nothing here.
        quota_moved = await quotas.release(uow.session, [line.id], now)
        stock_event(uow, [*quota_moved, *await release(uow.session, [line.id])], by_orders=True)
        await hooks.line_refunded(uow.session, line.id, now)

    async def _finish(self, uow: UnitOfWork, order: Order, lines: list[OrderLine], now: datetime) -> None:
        refunded = [line for line in lines if line.outcome == REFUNDED]
        if not refunded:
            target = OrderStatus.DELIVERED
        elif len(refunded) == len(lines):
            target = OrderStatus.REFUNDED
        else:
            target = OrderStatus.PARTIALLY_DELIVERED
        if refunded:
            amount = sum(line.unit_price_fen * line.quantity for line in refunded)
            await refunds.record(uow.session, order, key=f"order:{order.id}", line_ids=[line.id for line in refunded],
                                 amount_fen=amount, reason="not fulfilled: every supplier failed", now=now)
        reason = {OrderStatus.DELIVERED: "every line delivered", OrderStatus.REFUNDED: "nothing could be delivered",
                  OrderStatus.PARTIALLY_DELIVERED: "some lines refunded"}[target]
        previous = order.status
        if not await move(uow.session, order, target, actor=ACTOR, reason=reason, at=now):
            raise RuntimeError(f"order {order.number} changed under fulfilment")
        if refunded:
            await order_refunded(uow.session, order, amount, now)
        if target is OrderStatus.REFUNDED:
            # Nothing was delivered and everything is paid back: the coupon's use, its budget,
            # its code and the buyer's count of it come back, once (this transaction won the
            # move to REFUNDED), as for an order cancelled unpaid. Purchase limits (限购) keep
            # counting the order; a partly delivered order keeps its discount and redemption.
            await redemption.release(uow.session, order, now)
            if order.campaign_id is not None:
                await tallies.release(uow.session, order, scope=campaign_scope(order.campaign_id))
        announce(uow, order, previous, now)
        probe = Message(order.id, order.number, None, "", "", phone=order.buyer_phone, email=order.buyer_email)
        queued = bool(refunded)  # the refund's job
        for sender in self._senders:
            if not sender.accepts(probe):
                continue
            if sender.local:  # the inbox: written with the outcome, in this transaction
                await sender.send(uow.session, await notice(uow.session, order))
            else:
                await jobs.enqueue(uow.session, jobs.NOTIFY, f"notify:{order.id}:{sender.channel}", now=now,
                                   order_id=order.id, payload={"channel": sender.channel})
                queued = True
        if queued:
            uow.publish(jobs.JOBS_TOPIC, b"")
        log.info("order %s %s", order.number, target.value)


# The reads and writes every order's fulfilment sends, built once (their cache keys too).
_LOCKED = (
    select(Order).where(Order.id == bindparam("order")).with_for_update().execution_options(populate_existing=True)
)
_LINES = (
    select(OrderLine, Sku).join(Sku, Sku.id == OrderLine.sku_id).where(OrderLine.order_id == bindparam("order"))
    .order_by(OrderLine.id).execution_options(populate_existing=True)
)
_TASKS = (
    select(TopUpTask).where(TopUpTask.line_id.in_(bindparam("lines", expanding=True))).order_by(TopUpTask.id)
    .execution_options(populate_existing=True)
)
_NEW_TASK = insert(TopUpTask.__table__).returning(TopUpTask.__table__.c.id)
_LINE = OrderLine.__table__
_DECIDE = (
    update(_LINE).where(_LINE.c.id == bindparam("line"), _LINE.c.outcome.is_(None))
    .values(outcome=bindparam("decided"), supplier_id=bindparam("supplier"))
)


async def _locked(session: AsyncSession, order_id: int) -> Order | None:
    return await session.scalar(_LOCKED, {"order": order_id})


async def _lines(session: AsyncSession, order_id: int) -> tuple[list[OrderLine], dict[int, Sku]]:
    rows = (await session.execute(_LINES, {"order": order_id})).all()
    return [line for line, _ in rows], {sku.id: sku for _, sku in rows}


async def _tasks(session: AsyncSession, line_ids: list[int]) -> list[TopUpTask]:
    if not line_ids:
        return []
    return list(await session.scalars(_TASKS, {"lines": line_ids}))


async def _plan_topups(session: AsyncSession, order: Order, lines: list[OrderLine], skus: dict[int, Sku],
                       now: datetime, *, existing: bool = True) -> list[TopUpTask]:
    """The order's top-up tasks, created once: one per DIRECT_RECHARGE line, per top-up
    component of a bundle line and per top-up item drawn for a blind box line. request_id is the order number, suffixed -1, -2 ... when the
    order holds more than one top-up. `existing`: they may have been created before."""
    if not any(skus[line.sku_id].kind in (SkuKind.DIRECT_RECHARGE, *HOLDERS) for line in lines):
        return []
    if existing and (made := await _tasks(session, [line.id for line in lines])):
        return made
    wanted: list[tuple[int, int, int]] = []  # (line, SKU, units)
    for line in lines:
        sku = skus[line.sku_id]
        if sku.kind is SkuKind.DIRECT_RECHARGE:
            wanted.append((line.id, sku.id, line.quantity))
        elif sku.kind is SkuKind.BUNDLE:
            parts = (await session.execute(
                select(BundleItem.component_sku_id, BundleItem.quantity)
                .join(Sku, Sku.id == BundleItem.component_sku_id)
                .where(BundleItem.bundle_sku_id == sku.id, Sku.kind == SkuKind.DIRECT_RECHARGE)
                .order_by(BundleItem.component_sku_id)
            )).all()
            wanted.extend((line.id, component, line.quantity * per) for component, per in parts)
        elif sku.kind is SkuKind.BLIND_BOX:
            # The top-ups its draws reserved (services/draws/boxes.py), one task per item drawn.
            drawn = (await session.execute(
                select(Allocation.sku_id, func.sum(Allocation.units))
                .where(Allocation.line_id == line.id, Allocation.source == "COUNTER", Allocation.state == "HELD")
                .group_by(Allocation.sku_id).order_by(Allocation.sku_id)
            )).all()
            wanted.extend((line.id, item, int(units)) for item, units in drawn)
    # Core INSERTs: the tasks are held as plain objects outside the session (nothing to flush).
    connection = await session.connection()
    created: list[TopUpTask] = []
    for index, (line_id, sku_id, units) in enumerate(wanted, start=1):
        values: dict[str, object] = {
            "line_id": line_id, "sku_id": sku_id, "units": units, "status": NEW, "supplier_index": 0, "checks": 0,
            "request_id": order.number if len(wanted) == 1 else f"{order.number}-{index}", "updated_at": now,
            "supplier_id": None, "supplier_reference": None, "next_check_at": None,
        }
        created.append(TopUpTask(id=(await connection.execute(_NEW_TASK, values)).scalar_one(), **values))
    return created


async def _open_plans(session: AsyncSession, order: Order, lines: list[OrderLine], skus: dict[int, Sku],
                      tasks: list[TopUpTask]) -> list[Plan]:
    """The next top-up of each undecided line, with its SKU and suppliers."""
    account = order.recharge_account or order.buyer_phone or ""
    undecided = {line.id for line in lines if line.outcome is None}
    nexts: list[TopUpTask] = []
    for line_id in sorted(undecided):
        # One at a time within a line: a bundle's next top-up waits for the one before.
        for task in (task for task in tasks if task.line_id == line_id):
            if task.status == SUCCEEDED:
                continue
            if task.status in OPEN:
                nexts.append(task)
            break
    if not nexts:
        return []
    sku_ids = {task.sku_id for task in nexts}
    missing = sku_ids - skus.keys()  # a bundle's components
    if missing:
        skus = {**skus, **{sku.id: sku for sku in await session.scalars(select(Sku).where(Sku.id.in_(missing)))}}
    offers = await suppliers_for(session, sku_ids)
    return [
        Plan(task, skus[task.sku_id], account, [s for s, _ in offers.get(task.sku_id, [])],
             product_codes={s.id: code for s, code in offers.get(task.sku_id, []) if code})
        for task in nexts
    ]


async def _decide(session: AsyncSession, line: OrderLine, outcome: str, supplier_id: int | None) -> bool:
    """Set the line's outcome once; False if it was decided before."""
    connection = await session.connection()
    result = await connection.execute(_DECIDE, {"line": line.id, "decided": outcome, "supplier": supplier_id})
    if rows_changed(result) != 1:
        return False
    set_committed_value(line, "outcome", outcome)  # written above: no flush writes it again
    set_committed_value(line, "supplier_id", supplier_id)
    return True


def _wait(task: TopUpTask, now: datetime) -> float:
    if task.next_check_at is None:
        return 0.05
    return max(0.05, (task.next_check_at - now).total_seconds())
