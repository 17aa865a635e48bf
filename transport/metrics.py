"""GET /metrics for operators, and the gateway's own families: GraphQL requests, WebSockets, the cache.

The endpoint answers an admin key only (`Authorization: Bearer <admin key>`; 401 without a
key, 403 for any other). `QUANYI_METRICS_ADDRESS` (`host:port`) serves the same families
without a key on an address of their own, for a network only Prometheus reaches
(`MetricsListener`). What it answers:
- the families every process counts (these, and services/core/telemetry.py's); with
  PROMETHEUS_MULTIPROC_DIR set they are read from the files all the workers write, so any
  worker's answer covers every worker;
- what the database knows at the moment of the scrape (jobs queued, low stock), read by
  services/analytics/gauges.py, the same whichever worker answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from domain.access import Principal
from schema.errors import ApiError, ErrorCode
from services.analytics.gauges import JobFigures, LowStock, job_figures, low_stock
from services.core.database import Database
from services.fulfilment import connections
from services.fulfilment.supplier_registry import SupplierRegistry
from transport.exchange import note_cache_hit
from transport.response_cache import Answer, Key, ResponseCache

log = logging.getLogger("quanyi.metrics")

REQUESTS = Counter(
    "quanyi_graphql_requests_total", "GraphQL requests over HTTP by operation name (names seen, up to a "
    "bound; else other), type and outcome (ok, client_error, server_error).", ["operation", "type", "outcome"],
)
LATENCY = Histogram(
    "quanyi_graphql_request_duration_seconds", "Time to answer a GraphQL request over HTTP.", ["operation", "type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERRORS = Counter(
    "quanyi_graphql_errors_total", "Errors in GraphQL answers over HTTP, by extensions.code.", ["code"],
)
WEBSOCKETS = Gauge("quanyi_websocket_connections", "Open WebSocket connections.", multiprocess_mode="livesum")
SUBSCRIPTIONS = Gauge("quanyi_graphql_subscriptions", "Running GraphQL subscriptions.", multiprocess_mode="livesum")
CACHE = Counter(
    "quanyi_response_cache_lookups_total", "Response cache lookups by result (hit, miss); "
    "the hit ratio is hit / (hit + miss).", ["result"],
)

CODES = frozenset(code.value for code in ErrorCode)

PrincipalOf = Callable[[Mapping[str, str]], Awaitable[Principal]]


def error_code(code: object) -> str:
    """A code as a label value: one of ours, else OTHER (a code is whatever an error carries)."""
    return code if isinstance(code, str) and code in CODES else "OTHER"


class MeasuredResponseCache(ResponseCache):
    """The response cache, counting its hits and misses."""

    def get(self, key: Key) -> Answer | None:
        answer = super().get(key)
        if answer is None:
            CACHE.labels("miss").inc()
        else:
            CACHE.labels("hit").inc()
            note_cache_hit()
        return answer


class CountedSubscription:
    """A subscription's event stream, counted among the running ones until it is closed."""

    def __init__(self, events: AsyncIterator[Any]) -> None:
        self._events = events
        self._open = True
        SUBSCRIPTIONS.inc()

    def __aiter__(self) -> CountedSubscription:
        return self

    async def __anext__(self) -> Any:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        if self._open:
            self._open = False
            SUBSCRIPTIONS.dec()
        close = getattr(self._events, "aclose", None)
        if close is not None:
            await close()


def counted_subscription(events: Any) -> Any:
    return CountedSubscription(events)


class MetricsEndpoint:
    def __init__(self, principal_of: PrincipalOf, db: Database, suppliers: SupplierRegistry | None = None) -> None:
        self._principal_of = principal_of
        self._db = db
        self._suppliers = suppliers

    async def handle(self, request: Request) -> Response:
        try:
            principal = await self._principal_of(request.headers)
        except ApiError as error:
            return _refused(401, error.message)
        if principal.role is None:
            return _refused(401, "metrics are for operators: send Authorization: Bearer <admin key>")
        if not principal.is_admin:
            return PlainTextResponse("metrics are for operators (an admin key)", 403)
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        body = encoder(_Scrape(_registry(), await self.database_families()))
        return Response(body, headers={"content-type": content_type})

    async def database_families(self) -> list[Metric]:
        now = datetime.now(UTC)
        up = GaugeMetricFamily("quanyi_metrics_database_up", "1 when the last scrape could read the database.")
        try:
            async with self._db.read_sessions() as session:
                jobs = await job_figures(session, now)
                low = await low_stock(session, now)
                reach = await connections.check(session, self._suppliers) if self._suppliers else None
                waiting = await connections.waiting_topups(session)
        except Exception as error:  # noqa: BLE001 - the process's own families are still worth answering
            log.warning("metrics: the database figures are unavailable: %s", type(error).__name__)
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *_job_families(jobs), *_stock_families(low), *_supplier_families(reach, waiting, now)]


class MetricsListener:
    """The families on an address of their own, without a key: prometheus_client's HTTP server
    in a thread of this process; the database's figures are read on the app's event loop.

    With several workers the first to bind the address serves it (with PROMETHEUS_MULTIPROC_DIR
    its answer covers them all); the others say so once and leave it to that one.
    """

    def __init__(self, endpoint: MetricsEndpoint, loop: asyncio.AbstractEventLoop) -> None:
        self._endpoint, self._loop = endpoint, loop
        self._server: Any = None

    def start(self, address: str) -> bool:
        from prometheus_client import start_http_server

        host, _, port = address.rpartition(":")
        try:
            self._server, _ = start_http_server(int(port), host or "0.0.0.0", registry=self)
        except OSError as error:
            log.info("metrics address %s not taken (%s): another worker serves it", address, error.strerror)
            return False
        log.info("metrics on http://%s/metrics", address)
        return True

    def collect(self) -> Iterator[Metric]:
        # Runs in the server's thread: the database is read on the loop, never from here.
        waiting = asyncio.run_coroutine_threadsafe(self._endpoint.database_families(), self._loop)
        try:
            more = waiting.result(timeout=10)
        except Exception:  # noqa: BLE001 - the process's own families are still worth answering
            waiting.cancel()
            more = []
        yield from _Scrape(_registry(), more).collect()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def prepare_multiprocess_directory(workers: int, environ: dict[str, str] | None = None) -> str | None:
    """Before starting `workers` processes: the directory they share their samples through.

    Several workers need one (PROMETHEUS_MULTIPROC_DIR): a given one is emptied of an earlier
    run's files, and without one a new temporary directory is made and set in the environment
    the workers inherit. One worker needs none. Returns the directory in use, if any.
    """
    env = os.environ if environ is None else environ
    folder = env.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder and workers <= 1:
        return None
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        for stale in Path(folder).glob("*.db"):
            stale.unlink()
    else:
        folder = tempfile.mkdtemp(prefix="quanyi-metrics-")
        env["PROMETHEUS_MULTIPROC_DIR"] = folder
    return folder


def process_ending() -> None:
    """This worker stops: its gauges of live things (connections, jobs running) stop counting."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


def _refused(status: int, message: str) -> Response:
    return PlainTextResponse(message, status, headers={"www-authenticate": 'Bearer realm="quanyi"'})


def _registry() -> Any:
    """The families of every process when they share a multiprocess directory, else this one's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


class _Scrape:
    """A registry's families followed by the database's, as one collector for the encoder."""

    def __init__(self, registry: Any, more: Iterable[Metric]) -> None:
        self._registry, self._more = registry, list(more)

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        yield from self._more


def _job_families(figures: list[JobFigures]) -> Iterator[Metric]:
    queued = GaugeMetricFamily("quanyi_jobs_queued", "Jobs due now and waiting for a worker.", labels=["kind"])
    scheduled = GaugeMetricFamily(
        "quanyi_jobs_scheduled", "Jobs due later: retries after backoff, waits on a supplier.", labels=["kind"]
    )
    failing = GaugeMetricFamily(
        "quanyi_jobs_failing", "Unfinished jobs that have failed at least once (retried with backoff).", labels=["kind"]
    )
    oldest = GaugeMetricFamily(
        "quanyi_jobs_oldest_queued_seconds", "How long the oldest job due now has waited for a worker (0: none).",
        labels=["kind"],
    )
    for row in figures:
        queued.add_metric([row.kind], row.queued)
        scheduled.add_metric([row.kind], row.scheduled)
        failing.add_metric([row.kind], row.failing)
        oldest.add_metric([row.kind], row.oldest_queued_seconds)
    yield from (queued, scheduled, failing, oldest)


def _stock_families(low: list[LowStock]) -> Iterator[Metric]:
    count = GaugeMetricFamily(
        "quanyi_low_stock_skus", "SKUs on sale with few units left to sell, by whether they sold in the last hour.",
        labels=["selling"],
    )
    units = GaugeMetricFamily(
        "quanyi_low_stock_sku_available", "Units left to sell of each low SKU (the lowest, at most 50).",
        labels=["sku", "selling"],
    )
    for selling in (True, False):
        count.add_metric([_flag(selling)], sum(1 for row in low if row.selling is selling))
    for row in low[:50]:
        units.add_metric([row.code, _flag(row.selling)], row.available)
    yield from (count, units)


def _supplier_families(
    reach: connections.Connections | None, waiting: tuple[int, datetime | None], now: datetime,
) -> Iterator[Metric]:
    usable = GaugeMetricFamily(
        "quanyi_supplier_usable", "1 when top-ups can be sent to the (active) supplier, 0 when its connection is unusable.",
        labels=["supplier"],
    )
    stranded = GaugeMetricFamily(
        "quanyi_skus_without_usable_supplier",
        "Direct top-up SKUs on sale none of whose suppliers has a usable connection.",
    )
    each = GaugeMetricFamily(
        "quanyi_sku_without_usable_supplier", "1 for each direct top-up SKU on sale left without a usable supplier.",
        labels=["sku"],
    )
    count, oldest = waiting
    queue = GaugeMetricFamily(
        "quanyi_topups_waiting_for_supplier", "Paid top-ups waiting for a supplier with a usable connection.",
    )
    age = GaugeMetricFamily(
        "quanyi_topups_waiting_for_supplier_oldest_seconds", "How long the longest of them has waited.",
    )
    if reach is not None:
        for code, problem in reach.suppliers.items():
            usable.add_metric([code], 0 if problem else 1)
        stranded.add_metric([], len(reach.stranded))
        for row in reach.stranded[:50]:
            each.add_metric([row.code], 1)
    queue.add_metric([], count)
    age.add_metric([], _age_of(oldest, now))
    yield from (usable, stranded, each, queue, age)


def _age_of(since: datetime | None, now: datetime) -> float:
    if since is None:
        return 0.0
    return max((now - (since if since.tzinfo else since.replace(tzinfo=UTC))).total_seconds(), 0.0)


def _flag(value: bool) -> str:
    return "true" if value else "false"
