"""With tracing configured, one trace follows a request through Starlette, SQL, Redis and outgoing HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from config import Settings
from gateway import create_app
from services.core.database import Database
from suppliers.http import HttpSupplier
from tests.graphql.catalog_support import DemoCatalog
from tests.support import TEST_REDIS_URL, GraphQLClient

pytest.importorskip("opentelemetry.sdk", reason="the optional otel extra is not installed")
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }
"""
SCOPE = "opentelemetry.instrumentation."


@dataclass
class Traced:
    gql: GraphQLClient
    spans: InMemorySpanExporter


@pytest.fixture
async def traced(settings: Settings, db: Database) -> AsyncIterator[Traced]:
    spans = InMemorySpanExporter()
    app = create_app(replace(settings, otel=True), span_exporter=spans)
    async with LifespanManager(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://quanyi.test") as http:
            yield Traced(GraphQLClient(http), spans)


def _by_scope(spans: InMemorySpanExporter) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for span in spans.get_finished_spans():
        found.setdefault(span.instrumentation_scope.name.removeprefix(SCOPE), []).append(span)
    return found


async def test_a_request_is_one_trace_from_the_http_server_down_to_its_statements(
    traced: Traced, demo: DemoCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="quanyi.request")
    order = {"channel": "web", "idempotencyKey": "traced-order-0000001", "buyer": {"phone": "13800138000"},
             "lines": [{"skuId": demo.sku_id("QB-10"), "quantity": 1}]}
    answer = await traced.gql(PLACE, {"input": order})
    assert answer["data"]["placeOrder"]["userErrors"] == []

    scopes = _by_scope(traced.spans)
    [server] = [span for span in scopes["starlette"] if span.parent is None]
    assert server.attributes["http.route"] == "/graphql"
    # The order's statements are spans of the request's trace (the sweeps that run beside it
    # are traces of their own)
    statements = {span.name.split()[0] for span in scopes["sqlalchemy"] if span.context.trace_id == server.context.trace_id}
    assert {"SELECT", "INSERT", "UPDATE"} <= statements
    if TEST_REDIS_URL:  # the risk counters and the broker live in Redis
        assert any(span.context.trace_id == server.context.trace_id for span in scopes["redis"])
    # And the request's log line names the trace
    [line] = [r.fields for r in caplog.records if r.name == "quanyi.request"]  # type: ignore[attr-defined]
    assert line["trace_id"] == format(server.context.trace_id, "032x")


async def test_calls_to_other_services_over_http_are_traced(traced: Traced) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"balance": "100.00", "currency": "CNY"}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    adapter = HttpSupplier("traced", url, "supplier-secret")
    try:
        async with httpx.AsyncClient() as client:  # as a payment provider or a marketplace calls out
            assert (await client.get(f"{url}/balance")).status_code == 200
        await adapter.balance()  # as a supplier adapter calls out
    finally:
        await adapter.close()
        server.close()
        await server.wait_closed()
    found = _by_scope(traced.spans)
    [over_httpx] = found["httpx"]
    [supplier_call] = found["aiohttp_client"]
    for call in (over_httpx, supplier_call):
        assert (call.name, call.attributes["http.response.status_code"] if "http.response.status_code" in call.attributes
                else call.attributes["http.status_code"]) == ("GET", 200)
