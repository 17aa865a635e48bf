"""/metrics: only operators read it, and what clients do over HTTP and WebSocket shows in it."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from config import Settings
from gateway import create_app
from services.core.database import Database
from tests.e2e.server import free_port
from tests.e2e.shop import Shop, open_shop, order_input
from tests.graphql.conftest import Keys
from tests.graphql.test_websocket import TRANSPORT_WS, connected, receive
from tests.scrape import Scrape, scrape
from tests.support import GraphQLClient
from transport.exchange import Exchange
from transport.observe import OperationNames

CATALOG = 'query CatalogPage { products(channel: "web", first: 2) { edges { node { name } } } }'
BROKEN = "query Broken { products(channel: \"web\") { nope } }"
STOCK = "subscription Stock { stockChanged(channel: \"web\") { skuId available } }"
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }
"""

OPS = Path(__file__).resolve().parents[2] / "ops"
PROMTOOL = shutil.which("promtool")

FAMILIES = {
    "quanyi_graphql_requests", "quanyi_graphql_request_duration_seconds", "quanyi_graphql_errors",
    "quanyi_websocket_connections", "quanyi_graphql_subscriptions", "quanyi_broker_delivery_lag_seconds",
    "quanyi_jobs_queued", "quanyi_jobs_scheduled", "quanyi_jobs_failing", "quanyi_jobs_running",
    "quanyi_jobs_oldest_queued_seconds", "quanyi_job_runs", "quanyi_job_retries", "quanyi_job_duration_seconds",
    "quanyi_supplier_calls", "quanyi_supplier_call_duration_seconds", "quanyi_supplier_failovers",
    "quanyi_order_transitions", "quanyi_low_stock_skus", "quanyi_low_stock_sku_available",
    "quanyi_response_cache_lookups", "quanyi_db_pool_connections_in_use", "quanyi_db_pool_connections_limit",
    "quanyi_metrics_database_up",
}


def moved(before: Scrape, after: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def eventually(read: Callable[[], Awaitable[Scrape]], holds: Callable[[Scrape], bool]) -> Scrape:
    """The first scrape within two seconds for which `holds` is true (else the last one)."""
    deadline = time.monotonic() + 2
    while True:
        found = await read()
        if holds(found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.02)


async def test_metrics_are_for_operators_only(http: httpx.AsyncClient, keys: Keys) -> None:
    anonymous = await http.get("/metrics")
    assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, 'Bearer realm="quanyi"')
    assert (await http.get("/metrics", headers={"authorization": "Bearer qy_not_a_key"})).status_code == 401
    for key in (keys.taobao, keys.b2b, keys.web):
        refused = await http.get("/metrics", headers={"authorization": f"Bearer {key}"})
        assert refused.status_code == 403
        assert "quanyi_" not in refused.text
    answered = await scrape(http, keys.admin)
    assert FAMILIES <= answered.families
    assert answered.value("quanyi_metrics_database_up") == 1
    assert answered.value("quanyi_db_pool_connections_limit", pool="primary") > 0


async def test_metrics_on_an_address_of_their_own_need_no_key(settings: Settings, db: Database) -> None:
    # Given a gateway told to serve its metrics on an address only Prometheus reaches
    address = f"127.0.0.1:{free_port()}"
    app = create_app(replace(settings, metrics_address=address))
    async with LifespanManager(app), httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"http://{address}/metrics")
        assert answer.status_code == 200
        scraped = Scrape.parse(answer.text)
        assert FAMILIES <= scraped.families
        assert scraped.value("quanyi_metrics_database_up") == 1
    # And the address closes with the gateway
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://{address}/metrics")


async def test_graphql_requests_are_counted_by_operation_type_and_outcome(
    gql: GraphQLClient, http: httpx.AsyncClient, keys: Keys
) -> None:
    before = await scrape(http, keys.admin)
    # Given a storefront reading its catalog twice, a client sending a broken document, and a
    # client with a key that does not exist
    for _ in range(2):
        assert "errors" not in await gql(CATALOG)
    assert (await gql(BROKEN))["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert (await gql(CATALOG, key="qy_revoked_or_never_issued"))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    after = await scrape(http, keys.admin)
    # Then each request is counted under its operation, type and outcome, and timed
    assert moved(before, after, "quanyi_graphql_requests_total", operation="CatalogPage", type="query", outcome="ok") == 2
    assert moved(before, after, "quanyi_graphql_request_duration_seconds_count", operation="CatalogPage", type="query") >= 2
    assert moved(before, after, "quanyi_graphql_requests_total", type="query", outcome="client_error") == 2
    # And the errors by their code
    assert moved(before, after, "quanyi_graphql_errors_total", code="GRAPHQL_VALIDATION_FAILED") == 1
    assert moved(before, after, "quanyi_graphql_errors_total", code="UNAUTHENTICATED") == 1
    # And a name that never ran is no label of its own
    assert "Broken" not in after.labels("quanyi_graphql_requests_total", "operation")


async def test_clients_cannot_grow_the_operation_labels_without_bound(
    gql: GraphQLClient, http: httpx.AsyncClient, keys: Keys
) -> None:
    # A client inventing names for documents that do not validate adds no label values
    before = await scrape(http, keys.admin)
    for n in range(5):
        await gql(f"query Made{n}Up {{ nothing{n} }}")
    after = await scrape(http, keys.admin)
    assert not {f"Made{n}Up" for n in range(5)} & after.labels("quanyi_graphql_requests_total", "operation")
    assert moved(before, after, "quanyi_graphql_requests_total", operation="other", outcome="client_error") == 5


def test_operation_names_become_labels_up_to_a_bound() -> None:
    names = OperationNames(bound=2)

    def ran(name: str | None, *codes: str) -> str:
        exchange = Exchange("r", "POST", "/graphql", status=200, operation_name=name, operation_type="query")
        exchange.codes = list(codes)
        return names.label(exchange)

    assert [ran("A"), ran("B", "FORBIDDEN"), ran("B"), ran("C"), ran("A"), ran(None)] == [
        "A", "other", "B", "other", "A", "anonymous",
    ]


async def test_open_websockets_and_running_subscriptions_are_gauged(app: object, http: httpx.AsyncClient, keys: Keys) -> None:
    def read() -> Awaitable[Scrape]:
        return scrape(http, keys.admin)

    before = await read()
    async with connected(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send_json({"id": "s", "type": "subscribe", "payload": {"query": STOCK}})
        subscribed = await eventually(read, lambda s: moved(before, s, "quanyi_graphql_subscriptions") == 1)
        assert moved(before, subscribed, "quanyi_websocket_connections") == 1
        assert moved(before, subscribed, "quanyi_graphql_subscriptions") == 1
        await ws.send_json({"id": "s", "type": "complete"})
        completed = await eventually(read, lambda s: moved(before, s, "quanyi_graphql_subscriptions") == 0)
        assert moved(before, completed, "quanyi_graphql_subscriptions") == 0
        assert moved(before, completed, "quanyi_websocket_connections") == 1
    closed = await eventually(read, lambda s: moved(before, s, "quanyi_websocket_connections") == 0)
    assert moved(before, closed, "quanyi_websocket_connections") == 0


async def test_the_broker_lag_from_publishing_to_a_subscriber_is_observed(
    app: Any, http: httpx.AsyncClient, keys: Keys
) -> None:
    broker = app.state.broker
    before = await scrape(http, keys.admin)
    async with broker.subscribe("metricsprobe.lag") as messages:
        await broker.publish("metricsprobe.lag", b"{}")
        assert await asyncio.wait_for(anext(messages), 5) == b"{}"
    after = await scrape(http, keys.admin)
    assert moved(before, after, "quanyi_broker_delivery_lag_seconds_count", topic="metricsprobe") == 1
    assert 0 <= moved(before, after, "quanyi_broker_delivery_lag_seconds_sum", topic="metricsprobe") < 5


@pytest.fixture
async def cached(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(replace(settings, response_cache=True, response_cache_seconds=60))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            yield client


async def test_response_cache_hits_and_misses_are_counted(cached: httpx.AsyncClient, keys: Keys) -> None:
    gql = GraphQLClient(cached)
    before = await scrape(cached, keys.admin)
    first, second = await gql(CATALOG), await gql(CATALOG)
    assert first == second
    after = await scrape(cached, keys.admin)
    assert moved(before, after, "quanyi_response_cache_lookups_total", result="miss") == 1
    assert moved(before, after, "quanyi_response_cache_lookups_total", result="hit") == 1


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    # Low stock is counted over the whole catalog: a database of its own, so no other test's
    # SKUs count and these SKUs trouble no other test.
    folder: Path = tmp_path_factory.mktemp("low-stock")
    async with open_shop(folder, expiry_interval_seconds=3600) as opened:
        yield opened


async def test_skus_running_low_are_listed_and_those_selling_marked(shop: Shop) -> None:
    http = shop.client.http
    before = await scrape(http, shop.keys.admin)
    # Given two SKUs with few units left, one of which a buyer has just ordered
    selling = await shop.shelf.counter(4)
    idle = await shop.shelf.counter(2)
    answer = await shop.gql(PLACE, {"input": order_input((selling, 1), buyer={"phone": "13800138000", "rechargeAccount": "13800138000"})})
    assert answer["data"]["placeOrder"]["userErrors"] == []
    after = await scrape(http, shop.keys.admin)
    # Then both are listed with what is left, and the one that sells is marked selling
    assert after.value("quanyi_low_stock_sku_available", sku=selling.code) == 3
    assert after.value("quanyi_low_stock_sku_available", sku=selling.code, selling="true") == 3
    assert after.value("quanyi_low_stock_sku_available", sku=idle.code, selling="false") == 2
    assert moved(before, after, "quanyi_low_stock_skus", selling="true") == 1
    assert moved(before, after, "quanyi_low_stock_skus", selling="false") == 1


async def test_every_metric_the_alerts_use_is_one_the_gateway_exposes(http: httpx.AsyncClient, keys: Keys) -> None:
    exposed = (await scrape(http, keys.admin)).families
    names = {f"{family}{suffix}" for family in exposed for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    used = set(re.findall(r"\bquanyi_[a-z_]+", (OPS / "alerts.yml").read_text(encoding="utf-8")))
    assert used and used <= names, used - names


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed")
async def test_the_exposition_follows_prometheus_conventions(http: httpx.AsyncClient, keys: Keys) -> None:
    answer = await http.get("/metrics", headers={"authorization": f"Bearer {keys.admin}"})
    linted = subprocess.run([PROMTOOL, "check", "metrics"], input=answer.content, capture_output=True, timeout=60)
    assert (linted.returncode, linted.stdout + linted.stderr) == (0, b"")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian package prometheus) is not installed")
def test_the_alerting_rules_are_valid_and_fire_as_their_unit_tests_say() -> None:
    assert PROMTOOL is not None
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run([PROMTOOL, *command], cwd=OPS, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
