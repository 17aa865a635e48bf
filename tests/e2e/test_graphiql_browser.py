"""A developer opens GraphiQL on a machine without internet access and runs a query.

A uvicorn process serves the gateway with GraphiQL on, on a database of its own with the
demo data. Headless Chromium resolves no name but 127.0.0.1, as on a network cut off from
the internet, and keeps every URL it asks for: the page must load, run a query through its
own run button and show the answer, having asked this gateway alone for everything.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from tests.e2e.chromium import BrowserError, Page, open_page
from tests.e2e.server import Server, running_gateway
from tests.e2e.shop import migrated_database, shop_settings

pytestmark = pytest.mark.e2e

WITHIN_SECONDS = 20  # for GraphiQL to start and show an answer

QUERY = '{ product(channel: "web", slug: "qq-coins") { name skus { code } } }'
QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
RESULT = ".result-window .CodeMirror"


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, *, graphiql: bool) -> AsyncIterator[Server]:
    async with migrated_database(tmp_path) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            await seed_demo(db, SecretBox(settings.secret_key))
        finally:
            await db.dispose()
        env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix, "QUANYI_GRAPHIQL": "1" if graphiql else "0"}
        async with running_gateway(url, settings.secret_key, tmp_path / "gateway.log", env=env) as server:
            yield server


@contextlib.asynccontextmanager
async def offline_browser(server: Server, folder: Path) -> AsyncIterator[Page]:
    """A tab that reaches 127.0.0.1 only; on failure the error carries a screenshot and the logs."""
    async with open_page(offline=True) as page:
        try:
            yield page
        except BaseException as error:
            with contextlib.suppress(Exception):
                error.add_note(f"screenshot: {await page.screenshot(folder / 'graphiql-failure.png')}")
            error.add_note(f"page problems: {page.problems}")
            error.add_note(f"requested: {[url[:100] for url in page.requested]}")
            error.add_note(f"gateway log (tail):\n{server.output()[-3000:]}")
            raise


def outside(server: Server, urls: list[str]) -> list[str]:
    return [u for u in urls if not u.startswith((server.url + "/", "data:", "blob:", "about:"))]


async def test_graphiql_runs_a_query_with_no_internet_access(tmp_path: Path) -> None:
    async with gateway(tmp_path, graphiql=True) as server, offline_browser(server, tmp_path) as page:
        # The browser really is cut off: a name outside does not resolve.
        with pytest.raises(BrowserError, match="ERR_NAME_NOT_RESOLVED"):
            await page.goto("https://unpkg.com/graphiql/graphiql.min.js")
        page.requested.clear()

        await page.goto(f"{server.url}/graphql")
        await page.wait_for(f"!!document.querySelector({json.dumps(QUERY_EDITOR)})?.CodeMirror", timeout=WITHIN_SECONDS)
        await page.evaluate(f"document.querySelector({json.dumps(QUERY_EDITOR)}).CodeMirror.setValue({json.dumps(QUERY)})")
        await page.click(".graphiql-execute-button")

        answer = await page.wait_for(
            f"document.querySelector({json.dumps(RESULT)})?.CodeMirror.getValue()", timeout=WITHIN_SECONDS
        )
        result = json.loads(answer)
        assert "data" in result, answer
        data = result["data"]
        assert data["product"]["name"] and {"QB-10"} <= {s["code"] for s in data["product"]["skus"]}, answer
        assert outside(server, page.requested) == []
        assert f"{server.url}/graphiql/graphiql.min.js" in page.requested
        assert page.problems == []


async def test_a_browser_is_told_how_to_turn_graphiql_on_when_it_is_off(tmp_path: Path) -> None:
    async with gateway(tmp_path, graphiql=False) as server, offline_browser(server, tmp_path) as page:
        await page.goto(f"{server.url}/graphql")

        assert await page.text("h1") == "GraphiQL is off on this gateway"
        assert "QUANYI_GRAPHIQL=1 quanyi serve" in (await page.text("body") or "")
        assert outside(server, page.requested) == []
        assert page.problems == []
