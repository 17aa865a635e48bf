"""The durable job outbox: enqueue in the caller's transaction, claim with a lease, finish once.

A job row is written in the same transaction as the change that needs the work, so the
work exists exactly when the change does. Workers claim due jobs by setting a lease
(PostgreSQL: `FOR UPDATE SKIP LOCKED`, so concurrent workers in any number of processes
take different jobs; SQLite: the single writer transaction). A job whose worker died is
claimed again once its lease ends. Finishing is a conditional UPDATE on the lease, run in
the transaction of the job's last effects: a worker that lost its lease rolls back.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import bindparam, case, insert, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from models import Job, JobAttempt
from services.core.database import rows_changed
from services.core.driver import Driver

if TYPE_CHECKING:
    from services.core.unit_of_work import UnitOfWork

READY, DONE = "READY", "DONE"
LEASE_LENGTH = 64  # Job.lease
JOBS_TOPIC = "jobs.ready"

# Kinds of work.
FULFIL = "fulfil"  # an order: sell codes, run top-ups, decide the outcome
DELIVER = "deliver"  # an order line: send its codes through the senders
NOTIFY = "notify"  # an order: tell the buyer it was delivered or refunded
REFUND = "refund"  # a refund: hand it to the payment provider

_JOB = Job.__table__


class LeaseLost(Exception):
    """Another worker holds the job now; this worker's effects must be rolled back."""


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    kind: str
    key: str
    order_id: int | None
    payload: dict[str, object]
    attempts: int  # runs before this one
    lease: str
    started_at: datetime
    run_after: datetime  # as claimed: a run that finds it moved was woken meanwhile


async def enqueue(
    session: AsyncSession, kind: str, key: str, *, now: datetime, order_id: int | None = None,
    payload: dict[str, object] | None = None, delay: float = 0.0,
) -> None:
    """Add a job unless one with `key` exists; if it exists and is waiting, make it due now.
    One statement: the conflicting row is woken only while it is READY and due later, or
    running (see `wake`)."""
    connection = await session.connection()  # Core on the session's transaction: no ORM layer
    await connection.execute(_ENQUEUE[connection.dialect.name == "postgresql"], {
        "kind": kind, "key": key, "order_id": order_id, "payload": orjson.dumps(payload or {}).decode(),
        "run_after": now + timedelta(seconds=delay), "created_at": now,
    })


def _enqueueing(upsert: Callable[..., Any]) -> Any:
    statement = upsert(_JOB).values(
        kind=bindparam("kind"), key=bindparam("key"), order_id=bindparam("order_id"), payload=bindparam("payload"),
        status=READY, attempts=0, run_after=bindparam("run_after"), created_at=bindparam("created_at"),
    )
    return statement.on_conflict_do_update(
        index_elements=[_JOB.c.key], set_={"run_after": statement.excluded.run_after},
        where=(_JOB.c.status == READY)
        & ((_JOB.c.run_after > statement.excluded.run_after) | _JOB.c.lease.is_not(None)),
    )


async def wake(session: AsyncSession, key: str, *, now: datetime) -> None:
    """Make a waiting job due at `now` (sooner than it planned); a DONE job stays done.

    A job that is running is woken too: its run may have read the world before this change
    and end by postponing itself (`later`), which keeps a wake-up that came meanwhile (the
    moved `run_after` says so) instead of waiting out the delay its run chose."""
    await session.execute(
        update(Job)
        .where(Job.key == key, Job.status == READY, or_(Job.run_after > now, Job.lease.is_not(None)))
        .values(run_after=now)
        .execution_options(synchronize_session=False)
    )


async def claim(
    session: AsyncSession, *, worker: str, now: datetime, lease_seconds: float, limit: int, kinds: Sequence[str],
) -> list[Claimed]:
    """Lease up to `limit` due jobs of `kinds` for `worker`, oldest due first. The caller commits."""
    # The due rows are picked with SKIP LOCKED (workers of other processes take other jobs
    # instead of queueing here), then leased by an UPDATE of exactly those. Two statements on
    # purpose, as in services/inventory/reservation.py: inside `UPDATE ... WHERE id IN (SELECT
    # ... LIMIT n FOR UPDATE SKIP LOCKED)` PostgreSQL may run the pick again for each row,
    # each run skipping the rows just leased, and so lease every due job whatever `limit`
    # says. The lease is one token per claim; with the job's id it names this run of this job.
    connection = await session.connection()  # Core on the session's transaction: no ORM layer
    due = {"kinds": list(kinds), "now": now}
    picked = (await connection.execute(_PICK, {**due, "limit": limit})).scalars().all()
    if not picked:
        return []
    lease = lease_token(worker)
    rows = (await connection.execute(_LEASE, {
        **due, "picked": list(picked), "token": lease, "until": now + timedelta(seconds=lease_seconds),
    })).all()
    rows.sort(key=lambda row: (row.run_after, row.id))
    return [Claimed(row.id, row.kind, row.key, row.order_id, orjson.loads(row.payload), row.attempts, lease, now,
                    row.run_after) for row in rows]


async def claim_on(
    driver: Driver, *, worker: str, now: datetime, lease_seconds: float, limit: int, kinds: Sequence[str],
) -> list[Claimed]:
    """`claim` on PostgreSQL's driver, in one statement that commits on its own (CLAIM)."""
    lease = lease_token(worker)
    rows = await driver.fetch(CLAIM, lease, now + timedelta(seconds=lease_seconds), list(kinds), now, limit)
    claimed = [Claimed(row["id"], row["kind"], row["key"], row["order_id"], orjson.loads(row["payload"]),
                       row["attempts"], lease, now, row["run_after"]) for row in rows]
    claimed.sort(key=lambda job: (job.run_after, job.id))
    return claimed


# The pick inside ARRAY(...): an uncorrelated sub-select that PostgreSQL runs once (unlike
# `IN (SELECT ...)`, see `claim`), so the UPDATE leases exactly the rows it picked and locked.
CLAIM = """
UPDATE job SET lease = $1, locked_until = $2
WHERE id = ANY(ARRAY(
        SELECT id FROM job
        WHERE status = 'READY' AND kind = ANY($3::text[]) AND run_after <= $4
          AND (locked_until IS NULL OR locked_until <= $4)
        ORDER BY run_after, id LIMIT $5 FOR UPDATE SKIP LOCKED))
  AND status = 'READY' AND kind = ANY($3::text[]) AND run_after <= $4 AND (locked_until IS NULL OR locked_until <= $4)
RETURNING id, kind, key, order_id, payload, attempts, run_after
"""


# The claim's statements, built once (every worker sends them on each claim).
_DUE = (
    _JOB.c.status == READY,
    _JOB.c.kind.in_(bindparam("kinds", expanding=True)),
    _JOB.c.run_after <= bindparam("now"),
    or_(_JOB.c.locked_until.is_(None), _JOB.c.locked_until <= bindparam("now")),
)
_PICK = (
    select(_JOB.c.id).where(*_DUE).order_by(_JOB.c.run_after, _JOB.c.id).limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_LEASE = (
    update(_JOB).where(_JOB.c.id.in_(bindparam("picked", expanding=True)), *_DUE)
    .values(lease=bindparam("token"), locked_until=bindparam("until"))
    .returning(_JOB.c.id, _JOB.c.kind, _JOB.c.key, _JOB.c.order_id, _JOB.c.payload, _JOB.c.attempts, _JOB.c.run_after)
)


def lease_token(worker: str) -> str:
    """A claim's lease: random, so that it names this claim alone, followed by the worker that
    holds it, so that the job table shows who runs what (and whose jobs a dead process left)."""
    return f"{uuid.uuid4().hex[:16]}:{worker}"[:LEASE_LENGTH]


def lease_holder(lease: str) -> str:
    """The worker named in a lease (cut to fit the column, as it was written)."""
    return lease.partition(":")[2]


async def finish(session: AsyncSession, job: Claimed, *, worker: str, now: datetime) -> None:
    """Mark the job done, in the transaction of its effects; LeaseLost if it is not ours."""
    connection = await session.connection()
    result = await connection.execute(_FINISH, {"job": job.id, "token": job.lease, "at": now})
    if rows_changed(result) != 1:
        raise LeaseLost(job.key)
    await _attempt(session, job, worker, now, "DONE", None)


async def later(session: AsyncSession, job: Claimed, *, worker: str, now: datetime, delay: float) -> None:
    """The job is waiting on the world (a supplier, a code import): run it again after `delay`,
    or at once if it was woken while this run went on (its `run_after` moved since the claim).
    Not a failure: attempts do not grow."""
    woken = Job.run_after != job.run_after
    postponed = literal(now + timedelta(seconds=delay), Job.run_after.type)
    result = await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease == job.lease, Job.status == READY)
        .values(lease=None, locked_until=None, run_after=case((woken, Job.run_after), else_=postponed))
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        raise LeaseLost(job.key)
    await _attempt(session, job, worker, now, "LATER", None)


async def release(session: AsyncSession, job: Claimed, *, worker: str, now: datetime) -> bool:
    """Give the job back unfinished (its worker is shutting down): any worker may claim it at
    once instead of waiting for the lease to end. Not a failure: attempts do not grow. False
    when the lease was no longer ours (the run settled, or another worker holds the job)."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease == job.lease, Job.status == READY)
        .values(lease=None, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        return False
    await _attempt(session, job, worker, now, "RELEASED", None)
    return True


async def failed(session: AsyncSession, job: Claimed, *, worker: str, now: datetime, error: str) -> None:
    """The run raised: record why and retry with exponential backoff and jitter."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job.id, Job.lease == job.lease, Job.status == READY)
        .values(
            lease=None, locked_until=None, attempts=Job.attempts + 1, last_error=error[:500],
            run_after=now + timedelta(seconds=backoff(job.attempts + 1)),
        )
        .execution_options(synchronize_session=False)
    )
    if rows_changed(result) == 1:
        await _attempt(session, job, worker, now, "ERROR", error)


def backoff(attempt: int, *, base: float = 0.5, cap: float = 300.0) -> float:
    """Seconds before retry `attempt` (1, 2, ...): doubling, capped, with full jitter
    over its upper half so retries of many jobs do not arrive together."""
    ceiling = min(cap, base * 2 ** min(attempt - 1, 20))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


async def _attempt(session: AsyncSession, job: Claimed, worker: str, now: datetime, outcome: str,
                   error: str | None) -> None:
    # A Core INSERT on the session's connection: no ORM object, no ORM layer.
    await (await session.connection()).execute(_ATTEMPT, {
        "job_id": job.id, "worker": worker[:64], "started_at": job.started_at, "finished_at": now,
        "outcome": outcome, "error": error[:500] if error else None,
    })


# Built once per dialect (by "is it PostgreSQL"): every paid order enqueues one.
_ENQUEUE = {True: _enqueueing(postgresql.insert), False: _enqueueing(sqlite.insert)}
_FINISH = (
    update(_JOB).where(_JOB.c.id == bindparam("job"), _JOB.c.lease == bindparam("token"), _JOB.c.status == READY)
    .values(status=DONE, done_at=bindparam("at"), lease=None, locked_until=None, attempts=_JOB.c.attempts + 1,
            last_error=None)
)
_ATTEMPT = insert(JobAttempt.__table__)


def request_fulfilment_key(order_id: int) -> str:
    return f"{FULFIL}:{order_id}"


async def request_fulfilment(uow: UnitOfWork, order_id: int, *, now: datetime) -> None:
    """Queue (or wake) the fulfilment of a paid order, in the caller's transaction."""
    await enqueue(uow.session, FULFIL, request_fulfilment_key(order_id), now=now, order_id=order_id)
    uow.publish(JOBS_TOPIC, b"")
