"""Developers open GraphiQL at /graphql in a browser; every file it needs comes from the gateway.

Off unless asked for (QUANYI_GRAPHIQL=1, `quanyi serve --demo`, or QUANYI_DEBUG): a browser
then gets a page that says how to turn it on, and GraphiQL's files are not served. The
browser test on a machine cut off from the internet is tests/e2e/test_graphiql_browser.py.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from config import Settings
from gateway import create_app
from services.core.database import Database
from transport.graphiql import CONTENT_SECURITY_POLICY

BROWSER = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
FILES = [
    ("graphiql.min.js", "text/javascript; charset=utf-8"),
    ("graphiql.min.css", "text/css; charset=utf-8"),
    ("react.production.min.js", "text/javascript; charset=utf-8"),
    ("react-dom.production.min.js", "text/javascript; charset=utf-8"),
    ("graphiql-start.js", "text/javascript; charset=utf-8"),
    ("graphiql-page.css", "text/css; charset=utf-8"),
    ("LICENSE-graphiql.txt", "text/plain; charset=utf-8"),
    ("LICENSE-react.txt", "text/plain; charset=utf-8"),
    ("LICENSE-react-dom.txt", "text/plain; charset=utf-8"),
]


@pytest.fixture(scope="module")
async def with_graphiql(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(replace(
        settings, graphiql=True, broker_prefix=f"{settings.broker_prefix}graphiql-{uuid.uuid4().hex[:6]}:",
    ))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            yield client


async def test_a_browser_gets_graphiql_from_the_gateway_alone(with_graphiql: httpx.AsyncClient) -> None:
    response = await with_graphiql.get("/graphql", headers=BROWSER)

    assert (response.status_code, response.headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    loaded = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    assert sorted(loaded) == sorted([
        "/static/favicon.svg", "/graphiql/graphiql.min.css", "/graphiql/graphiql-page.css",
        "/graphiql/react.production.min.js", "/graphiql/react-dom.production.min.js",
        "/graphiql/graphiql.min.js", "/graphiql/graphiql-start.js",
    ])


def test_scripts_come_from_this_origin_only() -> None:
    directives = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'self'"
    assert "script-src" not in directives  # default-src 'self': no inline script, no other host


@pytest.mark.parametrize(("name", "content_type"), FILES)
async def test_graphiqls_files_and_licences_are_served(with_graphiql: httpx.AsyncClient, name: str, content_type: str) -> None:
    response = await with_graphiql.get(f"/graphiql/{name}")

    assert (response.status_code, response.headers["content-type"]) == (200, content_type)
    assert response.content
    assert b"sourceMappingURL" not in response.content  # no map ships: nothing to ask for


@pytest.mark.parametrize("path", ["/graphiql/missing.js", "/graphiql/..%2Fdashboard.html", "/graphiql/../gateway.py"])
async def test_nothing_else_is_served_under_graphiql(with_graphiql: httpx.AsyncClient, path: str) -> None:
    assert (await with_graphiql.get(path)).status_code == 404


async def test_a_query_in_the_address_is_answered_not_shown_in_graphiql(with_graphiql: httpx.AsyncClient) -> None:
    response = await with_graphiql.get(
        "/graphql", params={"query": "{ channels { code } }"}, headers={"accept": "text/html, application/json"}
    )

    assert response.headers["content-type"].startswith("application/json")
    assert {"code": "web"} in response.json()["data"]["channels"]


async def test_when_graphiql_is_off_a_browser_is_told_how_to_turn_it_on(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers=BROWSER)

    assert (response.status_code, response.headers["content-type"]) == (200, "text/html; charset=utf-8")
    assert "GraphiQL is off on this gateway" in response.text
    assert "quanyi serve --demo" in response.text
    assert "QUANYI_GRAPHIQL=1" in response.text
    assert "<script" not in response.text


@pytest.mark.parametrize("name", ["graphiql.min.js", "graphiql-start.js", "LICENSE-graphiql.txt"])
async def test_when_graphiql_is_off_its_files_are_not_served(http: httpx.AsyncClient, name: str) -> None:
    assert (await http.get(f"/graphiql/{name}")).status_code == 404


async def test_an_api_client_without_a_query_still_gets_a_graphql_error(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"accept": "application/graphql-response+json"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("environment", "on"),
    [
        ({}, False),
        ({"QUANYI_GRAPHIQL": "1"}, True),
        ({"QUANYI_DEBUG": "1"}, True),  # debugging brings it unless it is turned off
        ({"QUANYI_DEBUG": "1", "QUANYI_GRAPHIQL": "0"}, False),
        ({"QUANYI_GRAPHIQL": "yes"}, True),
        ({"QUANYI_GRAPHIQL": "0"}, False),
    ],
)
def test_graphiql_has_a_setting_of_its_own(tmp_path: Path, environment: dict[str, str], on: bool) -> None:
    settings = Settings.from_env({"QUANYI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/q.db", **environment})
    assert settings.graphiql is on


@pytest.mark.parametrize(
    ("environment", "schema_public"),
    [
        ({}, False),
        ({"QUANYI_GRAPHIQL": "1"}, True),  # GraphiQL reads the schema as its anonymous visitor
        ({"QUANYI_GRAPHIQL": "1", "QUANYI_PUBLIC_INTROSPECTION": "0"}, False),
        ({"QUANYI_DEBUG": "1", "QUANYI_GRAPHIQL": "0"}, True),
        ({"QUANYI_PUBLIC_INTROSPECTION": "1"}, True),
    ],
)
def test_turning_graphiql_on_shows_the_schema_unless_told_otherwise(
    tmp_path: Path, environment: dict[str, str], schema_public: bool
) -> None:
    settings = Settings.from_env({"QUANYI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/q.db", **environment})
    assert settings.public_introspection is schema_public
