"""The job outbox: never lost, never completed twice, retried with backoff, every run recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import select, update

from broker import MemoryBroker
from models import Job, JobAttempt
from services.core import jobs
from services.core.database import Database
from services.core.worker import JobRun, Worker


async def _enqueue(db: Database, kind: str, key: str, now: datetime) -> None:
    async with db.sessions() as session, session.begin():
        await jobs.enqueue(session, kind, key, now=now)
        await jobs.enqueue(session, kind, key, now=now)  # the same work twice is one job


async def _attempts(db: Database, key: str) -> list[tuple[str, str, str | None]]:
    async with db.fresh_sessions() as session:
        rows = await session.execute(select(JobAttempt.worker, JobAttempt.outcome, JobAttempt.error)
                                     .join(Job).where(Job.key == key).order_by(JobAttempt.id))
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_a_job_whose_worker_died_is_claimed_again_and_completed_once(db: Database) -> None:
    kind, key, now = f"lease-{uuid4().hex[:6]}", f"lease:{uuid4().hex}", datetime.now(UTC)
    await _enqueue(db, kind, key, now)
    async with db.sessions() as session, session.begin():
        [dead] = await jobs.claim(session, worker="dead", now=now, lease_seconds=5, limit=5, kinds=[kind])
    async with db.sessions() as session, session.begin():
        assert await jobs.claim(session, worker="alive", now=now + timedelta(seconds=1), lease_seconds=5, limit=5,
                                kinds=[kind]) == []
    async with db.sessions() as session, session.begin():
        [alive] = await jobs.claim(session, worker="alive", now=now + timedelta(seconds=6), lease_seconds=5, limit=5,
                                   kinds=[kind])
        await jobs.finish(session, alive, worker="alive", now=now + timedelta(seconds=7))
    with pytest.raises(jobs.LeaseLost):
        async with db.sessions() as session, session.begin():
            await jobs.finish(session, dead, worker="dead", now=now + timedelta(seconds=8))
    assert await _attempts(db, key) == [("alive", "DONE", None)]
    async with db.fresh_sessions() as session:
        assert (await session.scalar(select(Job.status).where(Job.key == key))) == jobs.DONE


async def test_workers_sharing_a_burst_of_due_jobs_each_take_no_more_than_they_have_room_for(db: Database) -> None:
    # Given six due jobs
    kind, now = f"burst-{uuid4().hex[:6]}", datetime.now(UTC)
    for n in range(6):
        await _enqueue(db, kind, f"burst:{n}:{uuid4().hex}", now)

    # When three workers with room for 2, 3 and 5 claim in turn
    taken = []
    for worker, room in (("a", 2), ("b", 3), ("c", 5)):
        async with db.sessions() as session, session.begin():
            taken.append(await jobs.claim(session, worker=worker, now=now, lease_seconds=60, limit=room, kinds=[kind]))

    # Then each took at most its room, oldest first, and no job went to two workers
    assert [len(claimed) for claimed in taken] == [2, 3, 1]
    keys = [job.key for claimed in taken for job in claimed]
    assert len(set(keys)) == 6


async def test_concurrent_claims_on_the_driver_take_each_due_job_once_within_their_room(db: Database) -> None:
    if db.driver is None:
        pytest.skip("PostgreSQL's driver: the claim in one statement")
    # Given twenty due jobs and one that is not due yet
    kind, now = f"race-{uuid4().hex[:6]}", datetime.now(UTC)
    for n in range(20):
        await _enqueue(db, kind, f"race:{n}:{uuid4().hex}", now)
    await _enqueue(db, kind, f"race:later:{uuid4().hex}", now + timedelta(seconds=60))

    # When eight workers with room for 3 claim at once, each in its own statement
    taken = await asyncio.gather(*(
        jobs.claim_on(db.driver, worker=f"w{n}", now=now, lease_seconds=60, limit=3, kinds=[kind]) for n in range(8)
    ))

    # Then none took more than its room, no job went to two workers, every due job was taken,
    # and the job table names the worker holding each lease
    assert all(len(claimed) <= 3 for claimed in taken)
    keys = [job.key for claimed in taken for job in claimed]
    assert len(keys) == len(set(keys)) == 20
    assert not any(key.startswith("race:later") for key in keys)
    async with db.fresh_sessions() as session:
        leases = dict((await session.execute(select(Job.key, Job.lease).where(Job.kind == kind))).all())
    assert {key: jobs.lease_holder(leases[key]) for key in keys} == {
        job.key: f"w{n}" for n, claimed in enumerate(taken) for job in claimed
    }


async def test_a_worker_runs_no_more_jobs_at_once_than_its_concurrency(db: Database) -> None:
    kind, now = f"busy-{uuid4().hex[:6]}", datetime.now(UTC)
    for n in range(5):
        await _enqueue(db, kind, f"busy:{n}:{uuid4().hex}", now)
    running, most = 0, 0

    async def slow(run: JobRun) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        async with run.uow() as uow:
            await run.done(uow, datetime.now(UTC))

    worker = Worker(db, MemoryBroker(), {kind: slow}, concurrency=2, name="w2")
    ran = [await worker.run_once() for _ in range(3)]

    assert (ran, most) == ([2, 2, 1], 2)


async def test_a_worker_shutting_down_lets_short_runs_finish_and_gives_back_the_others(db: Database) -> None:
    # Given a worker running a quick job and a job that waits on the world
    kind, now = f"stop-{uuid4().hex[:6]}", datetime.now(UTC)
    quick, stuck = f"stop:quick:{uuid4().hex}", f"stop:stuck:{uuid4().hex}"
    for key in (quick, stuck):
        await _enqueue(db, kind, key, now)
    started, release_quick = asyncio.Event(), asyncio.Event()

    async def handler(run: JobRun) -> None:
        if run.job.key == quick:
            await release_quick.wait()
        else:
            started.set()
            await asyncio.sleep(3600)
        async with run.uow() as uow:
            await run.done(uow, datetime.now(UTC))

    worker = Worker(db, MemoryBroker(), {kind: handler}, concurrency=2, poll_interval=0.05, lease_seconds=600,
                    name="leaving")
    running = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 10)

    # When it shuts down with a grace period the quick job fits in
    asyncio.get_running_loop().call_later(0.05, release_quick.set)
    await worker.shutdown(0.5)
    running.cancel()

    # Then the quick job is done, and the other is due again at once, held by no one
    assert await _attempts(db, quick) == [("leaving", "DONE", None)]
    assert await _attempts(db, stuck) == [("leaving", "RELEASED", None)]
    async with db.sessions() as session, session.begin():
        [again] = await jobs.claim(session, worker="next", now=datetime.now(UTC), lease_seconds=5, limit=5, kinds=[kind])
    assert (again.key, again.attempts) == (stuck, 0)


async def test_the_job_table_shows_which_worker_holds_each_leased_job(db: Database) -> None:
    kind, now = f"held-{uuid4().hex[:6]}", datetime.now(UTC)
    long_name = "a-rather-long-host-name.region.example.internal:4194304" * 2
    for key in (f"held:{uuid4().hex}", f"held:{uuid4().hex}"):
        await _enqueue(db, kind, key, now)
    async with db.sessions() as session, session.begin():
        [first] = await jobs.claim(session, worker="gateway-7:4242", now=now, lease_seconds=5, limit=1, kinds=[kind])
        [second] = await jobs.claim(session, worker=long_name, now=now, lease_seconds=5, limit=1, kinds=[kind])

    async with db.fresh_sessions() as session:
        leases = dict((await session.execute(select(Job.key, Job.lease).where(Job.kind == kind))).all())

    assert jobs.lease_holder(leases[first.key]) == "gateway-7:4242"
    assert long_name.startswith(jobs.lease_holder(leases[second.key])) and len(leases[second.key]) == jobs.LEASE_LENGTH


async def test_a_worker_whose_lease_ran_out_cannot_finish_its_own_job_claimed_again(db: Database) -> None:
    kind, key, now = f"slow-{uuid4().hex[:6]}", f"slow:{uuid4().hex}", datetime.now(UTC)
    await _enqueue(db, kind, key, now)
    async with db.sessions() as session, session.begin():
        [slow] = await jobs.claim(session, worker="gateway-7:4242", now=now, lease_seconds=5, limit=1, kinds=[kind])
    async with db.sessions() as session, session.begin():
        [again] = await jobs.claim(session, worker="gateway-7:4242", now=now + timedelta(seconds=6), lease_seconds=5,
                                   limit=1, kinds=[kind])

    with pytest.raises(jobs.LeaseLost):
        async with db.sessions() as session, session.begin():
            await jobs.finish(session, slow, worker="gateway-7:4242", now=now + timedelta(seconds=7))
    async with db.sessions() as session, session.begin():
        await jobs.finish(session, again, worker="gateway-7:4242", now=now + timedelta(seconds=8))
    assert await _attempts(db, key) == [("gateway-7:4242", "DONE", None)]


@pytest.mark.parametrize("wake", ["a supplier's callback", "more work queued"])
async def test_a_job_woken_while_it_runs_is_due_again_when_the_run_postpones_it(db: Database, wake: str) -> None:
    kind, key, now = f"woken-{uuid4().hex[:6]}", f"woken:{uuid4().hex}", datetime.now(UTC)
    await _enqueue(db, kind, key, now)
    async with db.sessions() as session, session.begin():
        [running] = await jobs.claim(session, worker="w1", now=now, lease_seconds=60, limit=1, kinds=[kind])

    # While it runs, what it waits for happens (a callback wakes it, an import queues it again)
    async with db.sessions() as session, session.begin():
        if wake == "a supplier's callback":
            await jobs.wake(session, key, now=now + timedelta(seconds=1))
        else:
            await jobs.enqueue(session, kind, key, now=now + timedelta(seconds=1))
    # and the run, which read the world before that, ends by waiting an hour
    async with db.sessions() as session, session.begin():
        await jobs.later(session, running, worker="w1", now=now + timedelta(seconds=2), delay=3600)

    # Then it is due at once, not in an hour
    async with db.sessions() as session, session.begin():
        again = await jobs.claim(session, worker="w1", now=now + timedelta(seconds=3), lease_seconds=60, limit=1,
                                 kinds=[kind])
    assert [job.key for job in again] == [key]


async def test_a_job_not_woken_while_it_runs_waits_as_its_run_said(db: Database) -> None:
    kind, key, now = f"idle-{uuid4().hex[:6]}", f"idle:{uuid4().hex}", datetime.now(UTC)
    await _enqueue(db, kind, key, now)
    async with db.sessions() as session, session.begin():
        [running] = await jobs.claim(session, worker="w1", now=now, lease_seconds=60, limit=1, kinds=[kind])
        await jobs.wake(session, f"another:{uuid4().hex}", now=now)  # some other job's wake-up
    async with db.sessions() as session, session.begin():
        await jobs.later(session, running, worker="w1", now=now + timedelta(seconds=2), delay=3600)

    async with db.sessions() as session, session.begin():
        soon = await jobs.claim(session, worker="w1", now=now + timedelta(seconds=3), lease_seconds=60, limit=1,
                                kinds=[kind])
        later = await jobs.claim(session, worker="w1", now=now + timedelta(seconds=3603), lease_seconds=60, limit=1,
                                 kinds=[kind])
    assert (soon, [job.key for job in later]) == ([], [key])


async def test_a_failing_job_is_retried_with_backoff_and_each_attempt_recorded(db: Database) -> None:
    kind, key, now = f"flaky-{uuid4().hex[:6]}", f"flaky:{uuid4().hex}", datetime.now(UTC)
    calls: list[int] = []

    async def flaky(run: JobRun) -> None:
        calls.append(run.job.attempts)
        if len(calls) < 3:
            raise ConnectionError("supplier down")
        async with run.uow() as uow:
            await run.done(uow, datetime.now(UTC))

    await _enqueue(db, kind, key, now)
    worker = Worker(db, MemoryBroker(), {kind: flaky}, name="w1")
    for _ in range(3):
        assert await worker.run_once() == 1
        assert await worker.run_once() == 0  # backing off: not due again at once
        async with db.sessions() as session, session.begin():
            await session.execute(update(Job).where(Job.key == key).values(run_after=now))
    assert calls == [0, 1, 2]
    assert await _attempts(db, key) == [
        ("w1", "ERROR", "ConnectionError: supplier down"), ("w1", "ERROR", "ConnectionError: supplier down"),
        ("w1", "DONE", None),
    ]


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (5, 8.0), (30, 300.0)):
        assert all(ceiling / 2 <= jobs.backoff(attempt) <= ceiling for _ in range(50))
