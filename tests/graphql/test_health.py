"""Load balancers and orchestrators probe the gateway: is it alive, can it serve."""

from __future__ import annotations

from dataclasses import replace

import httpx
from asgi_lifespan import LifespanManager

from config import Settings
from gateway import create_app

# Nothing listens on port 1: the connection is refused at once.
UNREACHABLE_DATABASE = "postgresql+asyncpg://quanyi@127.0.0.1:1/quanyi"


async def test_a_running_gateway_is_alive(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_a_gateway_whose_database_answers_is_ready(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")

    body = response.json()
    suppliers = body.pop("suppliers")
    assert (response.status_code, body) == (200, {"status": "ok", "database": "ok", "broker": "ok"})
    # Whether every top-up SKU on sale has a supplier it can reach: a detail, not readiness
    # (tests/fulfilment/test_supplier_connections.py moves it).
    assert set(suppliers) == {"status", "skusWithoutUsableSupplier", "topUpsWaitingForSupplier"}
    assert suppliers["status"] == ("ok" if not suppliers["skusWithoutUsableSupplier"] and not suppliers["topUpsWaitingForSupplier"] else "attention")


async def test_a_gateway_whose_database_is_unreachable_is_alive_but_not_ready(
    settings: Settings,
) -> None:
    app = create_app(replace(settings, database_url=UNREACHABLE_DATABASE))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            alive = await client.get("/healthz")
            ready = await client.get("/readyz")

    assert alive.status_code == 200
    assert (ready.status_code, ready.json()) == (
        503,
        {"status": "unavailable", "database": "unreachable", "broker": "ok"},
    )


async def test_a_gateway_asked_to_stop_is_not_ready_so_that_balancers_send_it_nothing_new(settings: Settings) -> None:
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            app.state.draining.begin()
            alive = await client.get("/healthz")
            ready = await client.get("/readyz")

    assert alive.status_code == 200
    assert (ready.status_code, ready.json()) == (503, {"status": "draining"})


async def test_a_request_while_the_database_is_unreachable_fails_at_once_saying_to_try_again(settings: Settings) -> None:
    app = create_app(replace(settings, database_url=UNREACHABLE_DATABASE))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            answer = await client.post("/graphql", json={"query": "{ channels { code } }"})

    error = answer.json()["errors"][0]
    assert (error["message"], error["extensions"]["code"]) == (
        "The service is briefly unavailable: try again shortly", "SERVICE_UNAVAILABLE")
