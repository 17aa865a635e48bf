"""Reporting a delivery back to the marketplace (虚拟发货), once, from the job worker.

When an imported order is delivered, the move that makes it DELIVERED (or PARTIALLY_
DELIVERED) marks its record PENDING and queues its report job, in that same transaction
(services/marketplace_events/delivered.py, called by services/orders/events.py): the report exists exactly when
the delivery does. The job reads the codes sold (or the top-ups made), sends them with no
transaction open, and records the answer: REPORTED, or a retry on SCHEDULE, or FAILED after
the last attempt or at once when the marketplace refuses for good (the trade closed).
Operators send a FAILED one again with `retryMarketplaceDelivery`.

Twice is once: the record moves PENDING -> REPORTED conditionally, so a job run again finds
it reported, and the marketplace keeps one delivery per trade, answering a second report
"already delivered", which counts as reported. Code secrets go to the marketplace only:
never into a log line, an error or the record; each report of codes is an audited reveal.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from marketplaces.base import DeliveredCode, MarketplaceRefused, MarketplaceUnavailable, Shipment, TopUpResult
from models import Channel, MarketplaceOrder, Order, OrderLine, TopUpTask
from services.core import jobs
from services.core.database import rows_changed
from services.core.secret_box import SecretBox
from services.core.unit_of_work import UnitOfWork
from services.core.worker import Handler, JobRun
from services.fulfilment import delivery, reveal
from services.marketplace_events.states import PENDING, REPORT, REPORT_FAILED, REPORTED, report_key
from services.marketplaces.connections import Markets

log = logging.getLogger("quanyi.marketplaces")

FAILED = REPORT_FAILED
SCHEDULE: tuple[float, ...] = (5, 30, 120, 600, 1800, 3600, 7200)  # seconds before each retry


def _now() -> datetime:
    return datetime.now(UTC)


class Reporter:
    def __init__(self, markets: Markets, box: SecretBox, *, schedule: Sequence[float] = SCHEDULE,
                 clock: Callable[[], datetime] = _now) -> None:
        self._markets, self._box, self._schedule, self._clock = markets, box, tuple(schedule), clock

    def handlers(self) -> dict[str, Handler]:
        return {REPORT: self.report}

    async def report(self, run: JobRun) -> None:
        record_id = int(run.job.payload["record"])  # type: ignore[call-overload]
        async with run.uow() as uow:
            now = self._clock()
            record = await uow.session.get(MarketplaceOrder, record_id)
            found = None
            if record is not None and record.report_status == PENDING:
                found = await self._markets.connection(uow.session, channel=await channel_code(uow.session, record.channel_id))
            if record is None or record.report_status != PENDING or found is None or record.order_id is None:
                await run.done(uow, now)  # reported already, or nothing left to report it to
                return
            connection, adapter = found
            shipment, code_lines = await self._shipment(uow.session, record.tid, record.order_id)
        error, final = await attempt(adapter.ship(shipment))
        async with run.uow() as uow:
            now = self._clock()
            attempts = record.report_attempts + 1
            if error is None:
                reported = await _settle(uow.session, record_id, REPORTED, now, attempts, None, reported_at=now)
                if reported:
                    actor = f"marketplace:{connection.channel}"
                    for line_id in code_lines:
                        reveal.record(uow.session, record.order_id, line_id, actor, None, now)
                log.info("marketplace trade %s: delivery reported (attempt %d)", record.tid, attempts)
                await run.done(uow, now)
                return
            log.warning("marketplace trade %s: delivery report attempt %d failed: %s", record.tid, attempts, error)
            round_attempts = attempts - int(run.job.payload.get("from", 0))  # type: ignore[call-overload]
            if not final and round_attempts <= len(self._schedule):
                delay = self._schedule[round_attempts - 1] * random.uniform(0.8, 1.2)
                await _settle(uow.session, record_id, PENDING, now, attempts, error)
                await run.later(uow, now, delay)
                return
            await _settle(uow.session, record_id, FAILED, now, attempts, error)
            await run.done(uow, now)

    async def _shipment(self, session: AsyncSession, tid: str, order_id: int) -> tuple[Shipment, list[int]]:
        """The codes sold to the order's delivered lines, or its top-ups' results; and the
        lines whose codes it carries (each a reveal, audited when the report succeeds)."""
        order = await session.get(Order, order_id)
        lines = list(await session.scalars(
            select(OrderLine).where(OrderLine.order_id == order_id, OrderLine.outcome == "DELIVERED").order_by(OrderLine.id)))
        codes: list[DeliveredCode] = []
        code_lines: list[int] = []
        for line in lines:
            sold = await delivery.sold_codes(session, self._box, line.id)
            if sold:
                code_lines.append(line.id)
                codes.extend(DeliveredCode(code.number, code.secret) for code in sold)
        account = (order.recharge_account or order.buyer_phone or "") if order is not None else ""
        references = await session.scalars(
            select(TopUpTask.supplier_reference).where(TopUpTask.line_id.in_([line.id for line in lines]),
                                                       TopUpTask.status == "SUCCEEDED").order_by(TopUpTask.id))
        topups = tuple(TopUpResult(account, reference or "") for reference in references)
        return Shipment(tid, codes=tuple(codes), topups=topups), code_lines


async def retry(session: AsyncSession, record_id: int, now: datetime) -> MarketplaceOrder | None:
    """Send a FAILED report again, its retry schedule restarted; None unless it had failed."""
    record = await session.scalar(select(MarketplaceOrder).where(MarketplaceOrder.id == record_id).with_for_update()
                                  .execution_options(populate_existing=True))
    if record is None or record.report_status != FAILED:
        return None
    attempts = record.report_attempts
    await _settle(session, record_id, PENDING, now, attempts, record.report_error)
    await jobs.enqueue(session, REPORT, report_key(record_id, attempts), now=now,
                       payload={"record": record_id, "from": attempts})
    await session.refresh(record)
    return record


async def channel_code(session: AsyncSession, channel_id: int) -> str:
    return (await session.scalar(select(Channel.code).where(Channel.id == channel_id))) or ""


async def attempt(call: Awaitable[object]) -> tuple[str | None, bool]:
    """One call to the marketplace: (None, False) when it went through, else why not and whether
    trying again is useless (the marketplace refused it, rather than not answering)."""
    try:
        await call
    except MarketplaceUnavailable as failure:
        return str(failure), False
    except MarketplaceRefused as refused:
        return str(refused), True
    return None, False


async def _settle(session: AsyncSession, record_id: int, status: str, now: datetime, attempts: int, error: str | None,
                  *, reported_at: datetime | None = None) -> bool:
    """Move the record's report on, only while it is PENDING (or FAILED, for a retry)."""
    values: dict[str, object] = {"report_status": status, "report_attempts": attempts, "updated_at": now,
                                 "report_error": error[:300] if error else None}
    if reported_at is not None:
        values["reported_at"] = reported_at
    result = await session.execute(
        update(MarketplaceOrder)
        .where(MarketplaceOrder.id == record_id, MarketplaceOrder.report_status.in_((PENDING, FAILED)))
        .values(**values).execution_options(synchronize_session=False)
    )
    return rows_changed(result) == 1
