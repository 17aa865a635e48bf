"""OpenTelemetry traces across Starlette, SQLAlchemy, Redis and httpx, when an exporter is configured.

On with `QUANYI_OTEL=1` or `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) set;
spans go to the OTLP/HTTP exporter, which reads the standard `OTEL_EXPORTER_OTLP_*`
variables; `OTEL_SERVICE_NAME` names the service (default `quanyi`). The packages are the
optional `otel` extra (`pip install -e .[otel]`) and are imported only here, only when
tracing is on: the default install neither needs nor loads them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine


class Tracing:
    """Instrumentation in place for one app; `close()` flushes the spans and takes it away."""

    def __init__(self, provider: Any, instrumentors: list[Any]) -> None:
        self.provider = provider
        self._instrumentors = instrumentors

    def close(self) -> None:
        for instrumentor in self._instrumentors:
            instrumentor.uninstrument()
        self.provider.shutdown()


def install(app: Any, engines: Sequence[AsyncEngine], *, exporter: Any = None) -> Tracing:
    """Trace requests to `app`, statements on `engines`, and every Redis, httpx and aiohttp call
    (the supplier adapters' requests go through aiohttp).

    `exporter`: where spans go (tests pass the SDK's in-memory exporter, exported at once);
    by default OTLP over HTTP, batched.
    """
    try:
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.instrumentation.starlette import StarletteInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as error:
        raise RuntimeError(
            "tracing is configured (QUANYI_OTEL or OTEL_EXPORTER_OTLP_ENDPOINT) but OpenTelemetry is not "
            "installed: pip install -e '.[otel]'"
        ) from error
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or "quanyi"}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    StarletteInstrumentor.instrument_app(app, tracer_provider=provider)
    instrumentors: list[Any] = []
    sqlalchemy = SQLAlchemyInstrumentor()
    # The instrumentation declares SQLAlchemy < 2.1; the engine events it listens to are the same
    # in 2.1 (the tests hold this), so its version check is skipped.
    sqlalchemy.instrument(engines=[engine.sync_engine for engine in engines], tracer_provider=provider,
                          skip_dep_check=True)
    instrumentors.append(sqlalchemy)
    for instrumentor in (RedisInstrumentor(), HTTPXClientInstrumentor(), AioHttpClientInstrumentor()):
        instrumentor.instrument(tracer_provider=provider)
        instrumentors.append(instrumentor)
    return Tracing(provider, instrumentors)


def current_trace_id() -> str | None:
    """The trace of the span under way, as 32 hex digits; None without tracing."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
