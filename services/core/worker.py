"""The job worker that runs inside every gateway process.

It claims due jobs (services/core/jobs.py), runs each with its kind's handler, and sleeps until
a `jobs.ready` broker message (sent after a commit that enqueued work) or the poll interval,
whichever comes first: the message makes it prompt, polling makes it certain.

A process that is stopping first stops claiming (`stop_claiming`), then lets the runs under
way finish within its grace period and gives back the leases of those that did not
(`shutdown`): another worker takes them at once, not when their leases would have ended.

Each run is counted and timed (services/core/telemetry.py) and logged as one line on
`quanyi.jobs`: the job, its attempt, how it ended and how long it took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy import or_, select

from broker import Broker, MessagesLost
from domain.contacts import mask_contacts
from models import Job
from services.core import jobs, telemetry
from services.core.database import Database, log_failure
from services.core.logs import FIELDS
from services.core.unit_of_work import UnitOfWork

log = logging.getLogger("quanyi.worker")
job_log = logging.getLogger("quanyi.jobs")


def _now() -> datetime:
    return datetime.now(UTC)


class JobRun:
    """One run of one job. The handler ends it with `done` or `later`, inside the unit of
    work of its last effects, so the job's completion commits with them or not at all."""

    def __init__(self, job: jobs.Claimed, worker: str, db: Database, broker: Broker) -> None:
        self.job, self.worker, self.db, self.broker = job, worker, db, broker
        self.settled = False
        self.outcome = "error"

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, self.broker)

    async def done(self, uow: UnitOfWork, now: datetime) -> None:
        await jobs.finish(uow.session, self.job, worker=self.worker, now=now)
        self.settled, self.outcome = True, "done"

    async def later(self, uow: UnitOfWork, now: datetime, delay: float) -> None:
        await jobs.later(uow.session, self.job, worker=self.worker, now=now, delay=delay)
        self.settled, self.outcome = True, "later"


Handler = Callable[[JobRun], Awaitable[None]]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


class Worker:
    def __init__(
        self, db: Database, broker: Broker, handlers: Mapping[str, Handler], *, concurrency: int = 4,
        poll_interval: float = 1.0, lease_seconds: float = 60.0, name: str | None = None,
    ) -> None:
        self._db, self._broker, self._handlers = db, broker, dict(handlers)
        self._concurrency = max(1, concurrency)
        self._poll = poll_interval
        self._lease = lease_seconds
        self.name = name or worker_name()
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._claims: dict[asyncio.Task[None], jobs.Claimed] = {}
        self._stopping = False

    async def run(self) -> None:
        """Until cancelled; in-flight jobs are cancelled with it (their leases run out)."""
        listener = asyncio.create_task(self._listen(), name="job-wakeups")
        try:
            while True:
                # Cleared before the claim: a wake-up sent while claiming ends the wait below at once.
                self._wake.clear()
                try:
                    if not self._stopping:
                        await self._start_due()
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log_failure(log, "claiming jobs failed; retrying", error)
                # A claim takes every due job it has room for, so there is nothing more to claim
                # until a job ends, a wake-up comes, or the poll interval passes.
                waits: set[asyncio.Future[object]] = {asyncio.ensure_future(self._wake.wait()), *self._running}  # type: ignore[arg-type]
                await asyncio.wait(waits, timeout=self._poll, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waits:
                    if waiter not in self._running:
                        waiter.cancel()
        finally:
            listener.cancel()
            for task in [listener, *self._running]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def stop_claiming(self) -> None:
        """Take no more jobs; the runs under way go on."""
        self._stopping = True
        self._wake.set()

    async def shutdown(self, grace_seconds: float) -> None:
        """Stop claiming, wait up to `grace_seconds` for the runs under way, then cancel the
        rest and give their jobs back. A cancelled run rolled back whatever it had not
        committed, and every step of a job is safe to run again (a top-up marked SUBMITTING
        is queried, never sent twice)."""
        self.stop_claiming()
        running = set(self._running)
        if running and grace_seconds > 0:
            await asyncio.wait(running, timeout=grace_seconds)
        unfinished = [(task, self._claims[task]) for task in running if not task.done()]
        for task, _ in unfinished:
            task.cancel()
        for task, _ in unfinished:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        given_back = 0
        for _, job in unfinished:
            try:
                async with self._db.sessions() as session, session.begin():
                    given_back += await jobs.release(session, job, worker=self.name, now=_now())
            except Exception:  # noqa: BLE001 - the lease then ends by itself
                log.warning("could not give back job %s; its lease will end by itself", job.key, exc_info=True)
        if unfinished:
            log.info("shutting down: gave back %d of %d unfinished jobs", given_back, len(unfinished))

    async def run_once(self, now: datetime | None = None) -> int:
        """Claim what is due now and run it to the end; returns how many jobs ran (tests, tools)."""
        claimed = await self._claim(self._concurrency, now)
        await asyncio.gather(*(self._execute(job) for job in claimed))
        return len(claimed)

    async def drain(self, rounds: int = 50) -> None:
        """Run due jobs until none is due (tests)."""
        for _ in range(rounds):
            if not await self.run_once():
                return

    async def _start_due(self) -> int:
        free = self._concurrency - len(self._running)
        if free <= 0:
            return 0
        claimed = await self._claim(free)
        for job in claimed:
            task = asyncio.create_task(self._execute(job), name=f"job-{job.key}")
            self._running.add(task)
            self._claims[task] = job
            task.add_done_callback(self._forget)
        return len(claimed)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._claims.pop(task, None)

    async def _claim(self, limit: int, now: datetime | None = None) -> list[jobs.Claimed]:
        now = now or _now()
        driver = self._db.driver
        if driver is not None and driver.enabled:
            # One statement on the driver, committed on its own: no BEGIN, no COMMIT, no ORM.
            return await jobs.claim_on(driver, worker=self.name, now=now, lease_seconds=self._lease, limit=limit,
                                       kinds=tuple(self._handlers))
        if self._db.engine.dialect.name == "sqlite":
            # A plain read first: an idle worker never takes SQLite's write lock. (PostgreSQL
            # claims with SKIP LOCKED and blocks nobody: the claim itself is the probe.)
            async with self._db.fresh_sessions() as session:
                due = await session.scalar(select(Job.id).where(
                    Job.status == jobs.READY, Job.kind.in_(tuple(self._handlers)), Job.run_after <= now,
                    or_(Job.locked_until.is_(None), Job.locked_until <= now),
                ).limit(1))
            if due is None:
                return []
        async with self._db.sessions() as session, session.begin():
            return await jobs.claim(session, worker=self.name, now=now, lease_seconds=self._lease, limit=limit,
                                    kinds=tuple(self._handlers))

    async def _execute(self, job: jobs.Claimed) -> None:
        started = time.perf_counter()
        timer = telemetry.JobTimer(job.kind, retried=job.attempts > 0)
        outcome, reason = "cancelled", None
        try:
            outcome, reason = await self._run(job)
        finally:
            seconds = time.perf_counter() - started
            timer.ended(outcome, seconds)
            # A job that only waits for its next turn (a marketplace's poll, a supplier not due
            # yet) says so at DEBUG: at INFO a poll every few seconds would drown the log.
            job_log.log(logging.DEBUG if outcome == "later" else logging.INFO, "job %s %s", job.key, outcome, extra={FIELDS: {
                "job_id": job.id, "kind": job.kind, "key": job.key, "order_id": job.order_id,
                "attempt": job.attempts + 1, "outcome": outcome, "duration_ms": round(seconds * 1000, 2),
                "worker": self.name, "error": reason,
            }})

    async def _run(self, job: jobs.Claimed) -> tuple[str, str | None]:
        """How the run ended (done, later, lease_lost, error) and, for an error, why."""
        run = JobRun(job, self.name, self._db, self._broker)
        handler = self._handlers.get(job.kind)
        try:
            if handler is None:
                raise LookupError(f"no handler for jobs of kind {job.kind}")
            await handler(run)
            if not run.settled:
                raise RuntimeError("the handler neither finished nor postponed the job")
            return run.outcome, None
        except jobs.LeaseLost:
            log.warning("job %s: lease lost to another worker; its effects were rolled back", job.key)
            return "lease_lost", None
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - every failure is recorded and retried
            # The type and message only: handlers never put secrets in exceptions.
            # An SMTP server refusing a recipient names the address: contacts are masked here too.
            reason = mask_contacts(f"{type(error).__name__}: {error}")[:500]
            log.warning("job %s failed (attempt %d): %s", job.key, job.attempts + 1, reason)
        async with self._db.sessions() as session, session.begin():
            await jobs.failed(session, job, worker=self.name, now=_now(), error=reason)
        return "error", reason

    async def _listen(self) -> None:
        while True:
            try:
                async with self._broker.subscribe(jobs.JOBS_TOPIC) as messages:
                    async for _ in messages:
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except MessagesLost:
                self._wake.set()  # a wake-up may have been missed: look for due jobs now
            except Exception:
                log.warning("job wake-ups unavailable; polling only", exc_info=True)
                await asyncio.sleep(self._poll)
