"""Admission control over HTTP and WebSocket: a query's cost is checked before it runs, and
each caller draws on a budget of its own (its key's, or its address's when anonymous).

The suite's shared app runs without budgets; these tests build apps with them on. Callers are
told apart by X-Forwarded-For (the test client is the trusted proxy), each test with addresses
of its own, so budgets kept in Redis never carry over from one test to another.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from asgi_lifespan import LifespanManager
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport

from config import Settings
from gateway import create_app
from services.core.database import Database
from tests.graphql.conftest import Keys
from tests.support import StatementCounter

CHANNELS = "{ channels { code } }"
CATALOG = """
query Catalog($first: Int) {
  products(channel: "web", first: $first) { edges { node { name skus { code price { amount } } } } }
}
"""
# 30 aliases of a full page, each SKU's product's SKUs again: inside the depth, alias and
# token limits, and about 7 KB, as an attacker would send it.
AMPLIFIER = "{ " + " ".join(
    f'a{i}: products(channel: "web", first: 100) {{ edges {{ node {{ id name slug description skus {{ id code name kind '
    f'product {{ id name slug skus {{ id code name kind faceValue {{ amount }} }} }} }} }} }} pageInfo {{ hasNextPage endCursor }} }}'
    for i in range(30)
) + " }"
SET_BUDGET = """
mutation Budget($input: SetApiKeyBudgetInput!) {
  setApiKeyBudget(input: $input) { apiKey { prefix budget { maximumAvailable restoreRate } } userErrors { field code } }
}
"""
CREATE_KEY = """
mutation { createApiKey(input: { role: PARTNER, channel: "taobao", name: "budgeted" }) { apiKey { id } secret } }
"""


def an_address() -> str:
    """A client address no other test uses (budgets in Redis outlive one app)."""
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


@pytest.fixture
async def budgeted(settings: Settings, db: Database) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    # Anonymous callers get 30 points refilled at 1 a second: a handful of small reads.
    application = create_app(replace(
        settings, rate_limits=True, trusted_proxies="127.0.0.1", budgets="anonymous=30/1",
        broker_prefix=f"{settings.broker_prefix}admission-{uuid.uuid4().hex[:6]}:",
    ))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            yield client, application


async def post(client: httpx.AsyncClient, query: str, variables: dict | None = None, *,
               address: str, key: str | None = None) -> httpx.Response:
    headers = {"accept": "application/graphql-response+json", "x-forwarded-for": address}
    if key:
        headers["authorization"] = f"Bearer {key}"
    return await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)


async def test_the_amplification_query_is_refused_before_any_resolver_runs(budgeted) -> None:
    client, application = budgeted
    counter = StatementCounter()
    counter.attach(application.state.db.engine)

    response, statements = await counter.measure(post(client, AMPLIFIER, address=an_address()))

    body = response.json()
    assert (response.status_code, statements) == (400, 0)
    assert len(AMPLIFIER) > 6000 and "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert error["extensions"]["maximumQueryCost"] == 1000
    assert error["extensions"]["requestedQueryCost"] == body["extensions"]["cost"]["requestedQueryCost"] > 100_000


async def test_every_answer_reports_what_it_asked_for_what_it_cost_and_the_bucket(budgeted) -> None:
    client, _ = budgeted
    address = an_address()

    response = await post(client, CATALOG, {"first": 2}, address=address)

    assert response.status_code == 200
    cost = response.json()["extensions"]["cost"]
    # Two products of (declared) five SKUs each asked for; what was served is counted.
    served = sum(len(edge["node"]["skus"]) for edge in response.json()["data"]["products"]["edges"])
    assert cost["requestedQueryCost"] == 2 + 2 * (1 + 5)
    assert cost["actualQueryCost"] == 2 + 2 + served
    assert cost["throttleStatus"]["maximumAvailable"] == 30
    assert cost["throttleStatus"]["restoreRate"] == 1
    # What was asked for was drawn, what was not used was given back.
    assert 30 - cost["actualQueryCost"] <= cost["throttleStatus"]["currentlyAvailable"] <= 30 - cost["actualQueryCost"] + 1


async def test_a_caller_over_budget_is_throttled_and_the_next_caller_is_not(budgeted, keys: Keys) -> None:
    client, _ = budgeted
    flooder, neighbour = an_address(), an_address()

    answers = [await post(client, CHANNELS, address=flooder) for _ in range(12)]

    statuses = [a.status_code for a in answers]
    assert 200 in statuses and 429 in statuses
    refused = answers[statuses.index(429)]
    [error] = refused.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) == error["extensions"]["retryAfter"] >= 1
    assert refused.json()["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 30
    # Another address, and a key (a budget of its own), are served as if nothing happened.
    assert (await post(client, CHANNELS, address=neighbour)).status_code == 200
    assert (await post(client, CHANNELS, address=flooder, key=keys.taobao)).status_code == 200


async def test_an_operator_gives_a_key_its_own_budget_and_takes_it_back(budgeted, keys: Keys) -> None:
    client, _ = budgeted
    created = (await post(client, CREATE_KEY, address=an_address(), key=keys.admin)).json()["data"]["createApiKey"]
    key_id, partner = created["apiKey"]["id"], created["secret"]
    address = an_address()

    small = {"id": key_id, "maximum": 25, "restoreRate": 1}
    given = (await post(client, SET_BUDGET, {"input": small}, address=an_address(), key=keys.admin)).json()
    assert given["data"]["setApiKeyBudget"]["apiKey"]["budget"] == {"maximumAvailable": 25, "restoreRate": 1}
    first = await post(client, CHANNELS, address=address, key=partner)
    second = await post(client, CHANNELS, address=address, key=partner)
    assert first.json()["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 25
    assert [first.status_code, second.status_code].count(429) <= 1
    assert any([(await post(client, CHANNELS, address=address, key=partner)).status_code == 429 for _ in range(6)])

    back = {"id": key_id, "maximum": None, "restoreRate": None}
    taken = (await post(client, SET_BUDGET, {"input": back}, address=an_address(), key=keys.admin)).json()
    assert taken["data"]["setApiKeyBudget"]["apiKey"]["budget"] is None
    after = await post(client, CHANNELS, address=address, key=partner)
    assert after.json()["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 2000


@pytest.mark.parametrize(
    ("budget", "field"),
    [
        ({"maximum": 0, "restoreRate": 1}, "maximum"),
        ({"maximum": 2**31 - 1, "restoreRate": 1}, "maximum"),
        ({"maximum": 10, "restoreRate": 11}, "restoreRate"),
        ({"maximum": 10, "restoreRate": 0}, "restoreRate"),
        ({"maximum": 10, "restoreRate": None}, "restoreRate"),
    ],
)
async def test_a_budget_that_cannot_hold_is_refused(budgeted, keys: Keys, budget: dict, field: str) -> None:
    client, _ = budgeted
    created = (await post(client, CREATE_KEY, address=an_address(), key=keys.admin)).json()["data"]["createApiKey"]

    answer = (await post(client, SET_BUDGET, {"input": {"id": created["apiKey"]["id"], **budget}},
                         address=an_address(), key=keys.admin)).json()

    assert answer["data"]["setApiKeyBudget"] == {"apiKey": None, "userErrors": [{"field": field, "code": "INVALID_BUDGET"}]}


async def test_only_operators_set_budgets(budgeted, keys: Keys) -> None:
    client, _ = budgeted
    answer = (await post(client, SET_BUDGET, {"input": {"id": "QXBpS2V5OjE=", "maximum": 10**6, "restoreRate": 10**5}},
                         address=an_address(), key=keys.taobao)).json()
    assert answer["data"] is None
    assert [e["extensions"]["code"] for e in answer["errors"]] == ["FORBIDDEN"]


async def test_websocket_operations_draw_on_the_same_budget(budgeted) -> None:
    client, application = budgeted
    address = an_address()
    # Drain the address's bucket over HTTP first.
    while (await post(client, CHANNELS, address=address)).status_code != 429:
        pass

    sockets = httpx.AsyncClient(transport=ASGIWebSocketTransport(application), base_url="http://quanyi.test")
    async with sockets, aconnect_ws("/graphql", sockets, subprotocols=["graphql-transport-ws"],
                                    headers={"x-forwarded-for": address}) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": CHANNELS}})
        message = await ws.receive_json(timeout=5)

    assert message["type"] == "error"
    assert [e["extensions"]["code"] for e in message["payload"]] == ["RATE_LIMITED"]
    assert message["payload"][0]["extensions"]["retryAfter"] >= 1


async def test_a_large_document_within_the_maximum_runs_as_before(budgeted) -> None:
    client, _ = budgeted
    query = "# " + "padding " * 300 + "\n{ " + " ".join(f"c{i}: channels {{ code }}" for i in range(1)) + " }"

    response = await post(client, query, address=an_address())

    assert len(query) > 2048 and response.status_code == 200
    body = response.json()
    assert "errors" not in body and body["data"]["c0"]


async def test_a_large_document_too_costly_is_refused_whatever_follows_its_costly_part(budgeted) -> None:
    client, _ = budgeted

    response = await post(client, AMPLIFIER + " fragment Unused on Product { name }", address=an_address())

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
