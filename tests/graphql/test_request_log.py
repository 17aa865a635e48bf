"""One log line per request: its request id, operation, outcome, duration and caller, nothing the caller sent."""

from __future__ import annotations

import logging
import re
from typing import Any

import httpx
import pytest

from services.core.logs import ContactMask, JsonFormatter
from tests.graphql.catalog_support import DemoCatalog
from tests.graphql.conftest import Keys

CATALOG = 'query CatalogPage { products(channel: "web", first: 1) { edges { node { name } } } }'
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }
"""


@pytest.fixture
def request_lines(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="quanyi.request")
    return caplog


def _record(lines: pytest.LogCaptureFixture, request_id: str) -> logging.LogRecord:
    [record] = [r for r in lines.records
                if r.name == "quanyi.request" and r.fields["request_id"] == request_id]  # type: ignore[attr-defined]
    return record


def _line(lines: pytest.LogCaptureFixture, request_id: str) -> dict[str, Any]:
    return dict(_record(lines, request_id).fields)  # type: ignore[attr-defined]


async def _post(http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
                **headers: str) -> httpx.Response:
    return await http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


async def test_a_request_is_logged_once_under_the_request_id_the_client_sent(
    http: httpx.AsyncClient, keys: Keys, request_lines: pytest.LogCaptureFixture
) -> None:
    response = await _post(http, CATALOG, **{"x-request-id": "shop-7f3a-0001", "authorization": f"Bearer {keys.web}"})
    assert response.headers["x-request-id"] == "shop-7f3a-0001"
    line = _line(request_lines, "shop-7f3a-0001")
    assert line.pop("duration_ms") > 0
    assert line == {
        "request_id": "shop-7f3a-0001", "method": "POST", "path": "/graphql", "status": 200,
        "operation": "CatalogPage", "operation_type": "query", "outcome": "ok", "role": "storefront", "channel": "web",
    }


async def test_a_request_without_a_usable_request_id_gets_one_and_is_told_it(
    http: httpx.AsyncClient, keys: Keys, request_lines: pytest.LogCaptureFixture
) -> None:
    for sent in ({}, {"x-request-id": "no spaces or quotes, please"}, {"x-request-id": "x" * 65}):
        response = await _post(http, "{ broken", **sent)
        given = response.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", given)
        line = _line(request_lines, given)
        assert (line["outcome"], line["errors"], line["role"] if "role" in line else None) == (
            "client_error", ["GRAPHQL_PARSE_FAILED"], None)
    # Every route answers with the request id, not only /graphql
    assert (await http.get("/healthz", headers={"x-request-id": "probe-1"})).headers["x-request-id"] == "probe-1"


async def test_a_partners_order_is_logged_without_the_buyers_contact(
    http: httpx.AsyncClient, keys: Keys, demo: DemoCatalog, request_lines: pytest.LogCaptureFixture
) -> None:
    buyer = {"phone": "13800138000", "email": "buyer.one@example.com", "rechargeAccount": "13800138000"}
    order = {"channel": "taobao", "idempotencyKey": "log-test-order-1", "buyer": buyer,
             "lines": [{"skuId": demo.sku_id("QB-10"), "quantity": 1}]}
    response = await _post(http, PLACE, {"input": order}, **{"x-request-id": "log-order-1",
                                                           "authorization": f"Bearer {keys.taobao}"})
    assert response.json()["data"]["placeOrder"]["userErrors"] == []
    line = _line(request_lines, "log-order-1")
    assert (line["operation"], line["operation_type"], line["outcome"], line["role"], line["channel"]) == (
        "Place", "mutation", "ok", "partner", "taobao")
    record = _record(request_lines, "log-order-1")
    ContactMask().filter(record)
    written = JsonFormatter().format(record)
    for secret in ("13800138000", "buyer.one", keys.taobao, "log-test-order-1"):
        assert secret not in written
