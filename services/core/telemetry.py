"""Prometheus metrics of the services: jobs, supplier calls, order transitions, the broker, the pool.

The families live in prometheus_client's default registry, so with PROMETHEUS_MULTIPROC_DIR
set (several workers) every process writes its own samples and `/metrics` adds them up
(transport/metrics.py). Gauges of this process (jobs running, connections in use) say how
they combine across processes (`livesum`: the sum over processes that are still alive).

Every label has a bounded set of values: job kinds, supplier codes, order statuses, pool
names, and broker topics cut to their first word (`order.QY…` counts as `order`).

What the database knows (jobs queued, low stock) is read when /metrics is scraped, not
counted here: services/analytics/gauges.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

# Each counter's `_created` series (when it was first counted) would double what is scraped and
# stored, for nothing the alerts or dashboards use.
disable_created_metrics()

# --- jobs (services/core/worker.py) -------------------------------------------------------

JOB_RUNS = Counter(
    "quanyi_job_runs_total", "Job runs by kind and how they ended: done, later (waiting on the world), "
    "error (retried with backoff), lease_lost, cancelled.", ["kind", "outcome"],
)
JOB_RETRIES = Counter("quanyi_job_retries_total", "Runs of jobs that had failed before.", ["kind"])
JOB_DURATION = Histogram(
    "quanyi_job_duration_seconds", "How long one job run took.", ["kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
JOBS_RUNNING = Gauge("quanyi_jobs_running", "Jobs running now.", ["kind"], multiprocess_mode="livesum")

# --- outbound webhooks (services/webhooks/dispatch.py) ---------------------------------------

WEBHOOK_ATTEMPTS = Counter(
    "quanyi_webhook_attempts_total", "Requests to webhook receivers by outcome: delivered (a 2xx answer) or failed.",
    ["outcome"],
)
WEBHOOK_DURATION = Histogram(
    "quanyi_webhook_attempt_duration_seconds", "How long a webhook receiver took to answer (or to fail to).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10),
)
WEBHOOK_ENDPOINTS_DISABLED = Counter(
    "quanyi_webhook_endpoints_disabled_total", "Webhook endpoints disabled because every attempt failed for a day.",
)

# --- suppliers (services/fulfilment/topups.py) ---------------------------------------------

SUPPLIER_CALLS = Counter(
    "quanyi_supplier_calls_total", "Calls to suppliers by supplier, action (submit, query) and outcome "
    "(succeeded, pending, failed, not_found, unknown: no usable answer).", ["supplier", "action", "outcome"],
)
SUPPLIER_DOWN = Gauge(
    "quanyi_supplier_down", "1 while a supplier fails every call and its top-ups are held back "
    "(services/fulfilment/supplier_health.py), else 0.", ["supplier"], multiprocess_mode="livemax",
)
SUPPLIER_LATENCY = Histogram(
    "quanyi_supplier_call_duration_seconds", "How long a supplier took to answer (or to fail to).",
    ["supplier", "action"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30),
)
SUPPLIER_FAILOVERS = Counter(
    "quanyi_supplier_failovers_total", "Top-ups that moved on from a supplier: it failed them "
    "(reason failed) or has no connection settings (reason unconfigured).", ["supplier", "reason"],
)
TOPUPS_EXHAUSTED = Counter(
    "quanyi_topups_exhausted_total", "Top-ups that every supplier of their SKU failed: their line is refunded.",
)
TOPUP_WAITS = Counter(
    "quanyi_topup_connection_waits_total",
    "Paid top-ups that had to wait for a supplier with a usable connection.",
)

# --- orders (services/orders/events.py) ----------------------------------------------------

ORDER_TRANSITIONS = Counter(
    "quanyi_order_transitions_total", "Committed order status changes, by from and to status "
    "(from NONE: the order was placed).", ["from_status", "to_status"],
)

# --- broker (broker/fanout.py) -------------------------------------------------------------

BROKER_LAG = Histogram(
    "quanyi_broker_delivery_lag_seconds", "From publishing a message to a subscriber taking it, by topic "
    "(its first word). Across hosts this includes their clock difference.", ["topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# --- database pool (services/core/database.py) ---------------------------------------------

POOL_IN_USE = Gauge(
    "quanyi_db_pool_connections_in_use", "Connections checked out of the pool.", ["pool"],
    multiprocess_mode="livesum",
)
POOL_LIMIT = Gauge(
    "quanyi_db_pool_connections_limit", "Connections the pool may hand out (size plus overflow).", ["pool"],
    multiprocess_mode="livesum",
)

# --- read replica (services/core/replica.py) -----------------------------------------------

REPLICA_LAG = Gauge(
    "quanyi_read_replica_lag_seconds", "Seconds since the read replica was last known to hold every commit "
    "of the primary (measured by WAL position).", multiprocess_mode="livemax",
)
REPLICA_IN_USE = Gauge(
    "quanyi_read_replica_in_use", "1 while lag-tolerant reads go to the read replica; 0 while they go "
    "to the primary (replica unreachable or behind the bound).", multiprocess_mode="livemin",
)
REPLICA_SET_ASIDE = Counter(
    "quanyi_read_replica_fallbacks_total", "Times reads moved from the read replica to the primary, by reason "
    "(unreachable, lagging).", ["reason"],
)
LAG_TOLERANT_READS = Counter(
    "quanyi_lag_tolerant_reads_total", "Catalog and listing reads by the server that answered them "
    "(replica, primary), while a read replica is configured.", ["served_by"],
)
_READS_ON = {True: LAG_TOLERANT_READS.labels("replica"), False: LAG_TOLERANT_READS.labels("primary")}


class JobTimer:
    """One job run: running while it lasts, then counted by how it ended."""

    __slots__ = ("_kind",)

    def __init__(self, kind: str, *, retried: bool) -> None:
        self._kind = kind
        JOBS_RUNNING.labels(kind).inc()
        if retried:
            JOB_RETRIES.labels(kind).inc()

    def ended(self, outcome: str, seconds: float) -> None:
        JOBS_RUNNING.labels(self._kind).dec()
        JOB_RUNS.labels(self._kind, outcome).inc()
        JOB_DURATION.labels(self._kind).observe(seconds)


def supplier_call(supplier: str, action: str, outcome: str, seconds: float) -> None:
    SUPPLIER_CALLS.labels(supplier, action, outcome.lower()).inc()
    SUPPLIER_LATENCY.labels(supplier, action).observe(seconds)


def webhook_attempt(outcome: str, seconds: float) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome).inc()
    WEBHOOK_DURATION.observe(seconds)


def webhook_endpoint_disabled() -> None:
    WEBHOOK_ENDPOINTS_DISABLED.inc()


def supplier_down(supplier: str, down: bool) -> None:
    SUPPLIER_DOWN.labels(supplier).set(1 if down else 0)


def supplier_failover(supplier: str, reason: str) -> None:
    SUPPLIER_FAILOVERS.labels(supplier, reason).inc()


def topup_exhausted() -> None:
    TOPUPS_EXHAUSTED.inc()


def topup_waiting() -> None:
    TOPUP_WAITS.inc()


def order_transition(session: AsyncSession | Session, previous: Any, status: Any) -> None:
    """Count the move once the transaction that made it commits (a rolled back move never happened)."""
    before = previous.value if previous is not None else "NONE"
    after_commit(session, ORDER_TRANSITIONS.labels(before, status.value).inc)


def order_transitions_committed(moves: list[tuple[Any, Any]]) -> None:
    """Count moves a transaction outside any session (services/core/driver.py) committed."""
    for previous, status in moves:
        ORDER_TRANSITIONS.labels(previous.value if previous is not None else "NONE", status.value).inc()


# The histogram's child per label: labels() costs a few microseconds a call, and every order
# wakes several subscribers. Bounded as the labels are (a topic's first word).
_BROKER_LAG_BY_TOPIC: dict[str, Any] = {}


def broker_delivered(topic: str, lag_seconds: float) -> None:
    label = topic.partition(".")[0][:32]
    child = _BROKER_LAG_BY_TOPIC.get(label)
    if child is None:
        child = _BROKER_LAG_BY_TOPIC[label] = BROKER_LAG.labels(label)
    child.observe(max(lag_seconds, 0.0))


def replica_lag(seconds: float | None) -> None:
    if seconds is not None:
        REPLICA_LAG.set(seconds)


def replica_in_use(in_use: bool) -> None:
    REPLICA_IN_USE.set(1 if in_use else 0)


def replica_set_aside(reason: str) -> None:
    REPLICA_SET_ASIDE.labels(reason).inc()


def replica_read(on_replica: bool) -> None:
    _READS_ON[on_replica].inc()


# --- after commit ----------------------------------------------------------------------------

_AFTER_COMMIT = "quanyi.after_commit"


def after_commit(session: AsyncSession | Session, action: Callable[[], object]) -> None:
    """Run `action` when the session's current transaction commits; forget it if it does not."""
    sync = session.sync_session if isinstance(session, AsyncSession) else session
    sync.info.setdefault(_AFTER_COMMIT, []).append(action)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, ()):
        action()


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    # After a commit the actions have run; after a rollback (or a close without commit) they
    # must not run with a later transaction of the same session.
    if transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)


# --- pool -------------------------------------------------------------------------------------


def watch_pool(engine: AsyncEngine, name: str) -> None:
    """Keep the pool gauges of `engine` current: one up at each checkout, one down at each
    checkin (SQLAlchemy sends a checkin for every connection that leaves use, even a broken one)."""
    pool: Any = engine.sync_engine.pool
    size = getattr(pool, "size", None)
    if callable(size):
        POOL_LIMIT.labels(name).set(size() + max(getattr(pool, "_max_overflow", 0), 0))
    in_use = POOL_IN_USE.labels(name)
    event.listen(engine.sync_engine, "checkout", lambda *_: in_use.inc())
    event.listen(engine.sync_engine, "checkin", lambda *_: in_use.dec())
