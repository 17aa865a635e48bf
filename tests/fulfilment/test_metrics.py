"""An operator watching /metrics sees orders move, jobs run and suppliers answer (or fail)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from sqlalchemy import update

from broker import MemoryBroker
from models import Job
from services.core import jobs
from services.core.worker import JobRun, Worker
from suppliers.base import Outcome
from tests.fulfilment.conftest import Fulfilling
from tests.fulfilment.fakes import FakeSupplier
from tests.scrape import Scrape, scrape

S, F = Outcome.SUCCEEDED, Outcome.FAILED


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


def transitions(before: Scrape, after: Scrape) -> dict[tuple[str, str], float]:
    """Order transitions between two scrapes, (from, to) -> count, the ones that moved."""
    name = "quanyi_order_transitions_total"
    pairs = {(dict(labels)["from_status"], dict(labels)["to_status"])
             for (sample, labels) in after.samples if sample == name}
    found = {pair: moved(before, after, name, from_status=pair[0], to_status=pair[1]) for pair in pairs}
    return {pair: count for pair, count in found.items() if count}


async def test_an_order_placed_paid_and_delivered_moves_orders_jobs_and_supplier_calls(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="quanyi.jobs")
    admin = fulfilling.keys.admin
    # Given an operator's view before a buyer orders a top-up
    before = await scrape(fulfilling.http, admin)

    # When the order is placed and paid, the fulfilment job waits for a worker
    order = await fulfilling.place(("GS-60", 1))
    await fulfilling.pay(order)
    paid = await scrape(fulfilling.http, admin)
    assert transitions(before, paid) == {
        ("NONE", "PENDING_RISK"): 1, ("PENDING_RISK", "PENDING_PAYMENT"): 1, ("PENDING_PAYMENT", "PAID"): 1,
    }
    assert paid.value("quanyi_jobs_queued", kind="fulfil") >= 1
    assert paid.value("quanyi_jobs_oldest_queued_seconds", kind="fulfil") >= 0

    # And when the worker runs it, the supplier is called and the order delivered
    await fulfilling.settle()
    done = await scrape(fulfilling.http, admin)
    assert (await fulfilling.status(order))["status"] == "DELIVERED"
    assert transitions(paid, done) == {("PAID", "FULFILLING"): 1, ("FULFILLING", "DELIVERED"): 1}
    assert done.value("quanyi_jobs_queued", kind="fulfil") == 0
    assert moved(paid, done, "quanyi_job_runs_total", kind="fulfil", outcome="done") >= 1
    assert moved(paid, done, "quanyi_job_duration_seconds_count", kind="fulfil") >= 1
    assert moved(paid, done, "quanyi_supplier_calls_total", supplier="sim-fast", action="submit", outcome="succeeded") == 1
    assert moved(paid, done, "quanyi_supplier_call_duration_seconds_count", supplier="sim-fast", action="submit") == 1
    assert moved(paid, done, "quanyi_supplier_failovers_total") == 0
    assert done.value("quanyi_jobs_running", kind="fulfil") == 0

    # And each job run is one structured log line
    lines = [record.fields for record in caplog.records if record.name == "quanyi.jobs"]  # type: ignore[attr-defined]
    fulfil = next(line for line in lines if line["kind"] == "fulfil" and line["outcome"] == "done")
    assert set(fulfil) >= {"job_id", "key", "attempt", "duration_ms", "worker", "order_id"}


async def test_a_supplier_that_fails_shows_as_a_failover_and_one_that_all_fail_as_exhausted(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    admin = fulfilling.keys.admin
    # Given the first supplier refuses every top-up
    fakes["sim-fast"].reset(default=F)
    before = await scrape(fulfilling.http, admin)
    order = await fulfilling.place(("GS-60", 1))
    await fulfilling.pay(order)
    await fulfilling.settle()
    # Then the top-up failed over to the backup, and the metrics say so
    failed_over = await scrape(fulfilling.http, admin)
    assert (await fulfilling.status(order))["status"] == "DELIVERED"
    assert moved(before, failed_over, "quanyi_supplier_calls_total", supplier="sim-fast", outcome="failed") == 1
    assert moved(before, failed_over, "quanyi_supplier_failovers_total", supplier="sim-fast", reason="failed") == 1
    assert moved(before, failed_over, "quanyi_supplier_calls_total", supplier="sim-backup", outcome="succeeded") == 1
    assert moved(before, failed_over, "quanyi_topups_exhausted_total") == 0

    # When the backup refuses too, the top-up is exhausted and the order refunded
    fakes["sim-backup"].reset(default=F)
    order = await fulfilling.place(("GS-60", 1))
    await fulfilling.pay(order)
    await fulfilling.settle()
    exhausted = await scrape(fulfilling.http, admin)
    assert (await fulfilling.status(order))["status"] == "REFUNDED"
    assert moved(failed_over, exhausted, "quanyi_supplier_failovers_total", supplier="sim-backup", reason="failed") == 1
    assert moved(failed_over, exhausted, "quanyi_topups_exhausted_total") == 1
    assert transitions(failed_over, exhausted)[("FULFILLING", "REFUNDED")] == 1


async def test_a_failing_job_shows_as_failing_retried_and_then_done(fulfilling: Fulfilling) -> None:
    admin = fulfilling.keys.admin
    kind, key, now = f"flaky-{uuid4().hex[:6]}", f"flaky:{uuid4().hex}", datetime.now(UTC)
    calls: list[int] = []

    async def flaky(run: JobRun) -> None:
        calls.append(run.job.attempts)
        if len(calls) < 3:
            raise ConnectionError("supplier down")
        async with run.uow() as uow:
            await run.done(uow, datetime.now(UTC))

    # Given a job whose first two runs fail
    async with fulfilling.db.sessions() as session, session.begin():
        await jobs.enqueue(session, kind, key, now=now)
    worker = Worker(fulfilling.db, MemoryBroker(), {kind: flaky}, name="metrics-test")
    queued = await scrape(fulfilling.http, admin)
    assert queued.value("quanyi_jobs_queued", kind=kind) == 1

    # When it fails once, it waits for its retry, marked as failing
    assert await worker.run_once() == 1
    failing = await scrape(fulfilling.http, admin)
    assert (failing.value("quanyi_jobs_queued", kind=kind), failing.value("quanyi_jobs_scheduled", kind=kind),
            failing.value("quanyi_jobs_failing", kind=kind)) == (0, 1, 1)

    # And when its retries run, the second fails and the third succeeds
    for _ in range(2):
        async with fulfilling.db.sessions() as session, session.begin():
            await session.execute(update(Job).where(Job.key == key).values(run_after=now))
        assert await worker.run_once() == 1
    done = await scrape(fulfilling.http, admin)
    assert calls == [0, 1, 2]
    assert done.value("quanyi_job_runs_total", kind=kind, outcome="error") == 2
    assert done.value("quanyi_job_runs_total", kind=kind, outcome="done") == 1
    assert done.value("quanyi_job_retries_total", kind=kind) == 2
    assert done.value("quanyi_jobs_failing", kind=kind) == 0
