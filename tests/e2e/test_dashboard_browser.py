"""An operator watches /dashboard in a real browser while buyers order through the API.

A uvicorn process serves the gateway on a database of its own with the demo data;
headless Chromium (Debian's package, driven over the DevTools protocol) opens the page,
the operator types an admin key and connects, and the page's numbers must follow the
orders placed over HTTP. A failing test leaves a screenshot in its tmp folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from domain.access import Role
from models import Sku
from schema.relay import encode_id
from services.access.keys import issue_key
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from tests.e2e.chromium import Page, open_page
from tests.e2e.server import Server, running_gateway
from tests.e2e.shop import migrated_database, shop_settings

pytestmark = pytest.mark.e2e

WITHIN_SECONDS = 15  # for the page to show what the API just did

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status total { amount currency } } userErrors { field code message } }
}
"""
PAY = """
mutation Pay($id: ID!, $reference: String!) { payOrder(orderId: $id, paymentReference: $reference) { userErrors { code message } } }
"""
SKU = "QB-10"  # demo card codes, among the hot SKUs from the start

LIVE = "document.querySelector('#status').dataset.state === 'live'"
ORDERS_LAST_HOUR = '[data-tile="orders-hour"] .value'
REVENUE_LAST_HOUR = '[data-tile="revenue-hour"] .value'
AVAILABLE = f'#stock [data-sku="{SKU}"] .available'
RESERVED = f'#stock [data-sku="{SKU}"] .reserved'
TOP_SKU = f'#top-skus [data-sku="{SKU}"] .figure'
from tests.support import without_cost


@dataclass(frozen=True)
class Site:
    server: Server
    admin_key: str
    sku_id: str

    @property
    def dashboard(self) -> str:
        return f"{self.server.url}/dashboard"


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with migrated_database(tmp_path) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            await seed_demo(db, SecretBox(settings.secret_key))
            async with db.sessions() as session, session.begin():
                admin = await issue_key(session, role=Role.ADMIN, channel=None, name="dashboard operator")
                sku_pk = await session.scalar(select(Sku.id).where(Sku.code == SKU))
        finally:
            await db.dispose()
        assert sku_pk is not None
        # Its own broker topics: runs sharing one Redis never hear each other.
        env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix}
        async with running_gateway(url, settings.secret_key, tmp_path / "gateway.log", env=env) as server:
            yield Site(server, admin.plaintext, encode_id("Sku", sku_pk))


class Relay:
    """A TCP relay between the browser and the gateway whose connections the test can cut,
    as a flaky network or a restarting load balancer would."""

    def __init__(self) -> None:
        self.url = ""
        self._links: set[asyncio.StreamWriter] = set()

    def cut(self) -> None:
        for link in self._links:
            link.transport.abort()
        self._links.clear()

    async def _link(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.transport.abort()
            return
        self._links |= {writer, upstream_writer}
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True)
        self._links -= {writer, upstream_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()


@contextlib.asynccontextmanager
async def relay_to(server: Server) -> AsyncIterator[Relay]:
    relay = Relay()
    port = int(server.url.rsplit(":", 1)[1])
    listener = await asyncio.start_server(partial(relay._link, port), "127.0.0.1", 0)
    relay.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    try:
        yield relay
    finally:
        listener.close()
        relay.cut()
        await listener.wait_closed()


@contextlib.asynccontextmanager
async def browser(site: Site, folder: Path) -> AsyncIterator[Page]:
    """A Chromium tab; on failure the error carries a screenshot, the page's complaints and the server log."""
    async with open_page() as page:
        try:
            yield page
        except BaseException as error:
            with contextlib.suppress(Exception):
                shot = await page.screenshot(folder / "dashboard-failure.png")
                error.add_note(f"screenshot: {shot}")
            error.add_note(f"page problems: {page.problems}")
            error.add_note(f"gateway log (tail):\n{site.server.output()[-3000:]}")
            raise


async def connect_as_operator(page: Page, site: Site, *, through: str | None = None) -> None:
    await page.goto(f"{through}/dashboard" if through else site.dashboard)
    await page.type_into("#admin-key", site.admin_key)
    await page.click("#connect-button")
    await page.wait_for(LIVE, timeout=WITHIN_SECONDS)


async def number(page: Page, selector: str) -> int | None:
    """The number an element shows, or None while it shows none."""
    digits = (await page.text(selector) or "").replace(",", "")
    return int(digits) if digits.isdigit() else None


async def shown(page: Page, selector: str) -> int:
    """The first number the element shows."""
    found = await page.poll(lambda: number(page, selector), lambda v: v is not None, timeout=WITHIN_SECONDS, what=selector)
    assert found is not None
    return found


async def showing(page: Page, selector: str, expected: int | str) -> None:
    """Waits until the element shows `expected` (a number, or the exact text)."""
    read = (lambda: number(page, selector)) if isinstance(expected, int) else (lambda: page.text(selector))
    await page.poll(read, lambda v: v == expected, timeout=WITHIN_SECONDS, what=f"{selector} == {expected!r}")


async def place_orders(site: Site, count: int) -> list[dict[str, Any]]:
    """`count` guest orders of one unit of SKU on the public channel web, as buyers send them."""
    placed = []
    async with httpx.AsyncClient(base_url=site.server.url, timeout=WITHIN_SECONDS) as http:
        for n in range(count):
            given = {
                "channel": "web",
                "idempotencyKey": f"dashboard-{uuid.uuid4().hex}",
                "lines": [{"skuId": site.sku_id, "quantity": 1}],
                "buyer": {"phone": f"1380013{n:04d}"},
            }
            answer = (await http.post("/graphql", json={"query": PLACE, "variables": {"input": given}})).json()
            payload = answer["data"]["placeOrder"]
            assert (payload["userErrors"], payload["order"]["status"]) == ([], "PENDING_PAYMENT"), answer
            placed.append(payload["order"])
    return placed


async def pay(site: Site, order: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=site.server.url, timeout=WITHIN_SECONDS) as http:
        answer = (await http.post(
            "/graphql",
            json={"query": PAY, "variables": {"id": order["id"], "reference": f"pay-{uuid.uuid4().hex}"}},
            headers={"authorization": f"Bearer {site.admin_key}"},
        )).json()
    assert without_cost(answer) == {"data": {"payOrder": {"userErrors": []}}}


async def test_the_operators_dashboard_follows_orders_as_they_are_placed_and_paid(site: Site, tmp_path: Path) -> None:
    async with browser(site, tmp_path) as page:
        await connect_as_operator(page, site)
        orders = await shown(page, ORDERS_LAST_HOUR)
        available = await shown(page, AVAILABLE)

        placed = await place_orders(site, 3)

        await showing(page, ORDERS_LAST_HOUR, orders + 3)
        await showing(page, AVAILABLE, available - 3)
        await showing(page, RESERVED, 3)
        await showing(page, TOP_SKU, "3 units · ¥0.00")
        await showing(page, "#chart-total", "3 orders placed · 0 paid")

        await pay(site, placed[0])

        price = placed[0]["total"]
        assert price["currency"] == "CNY"
        await showing(page, REVENUE_LAST_HOUR, f"¥{price['amount']}")
        await showing(page, TOP_SKU, f"3 units · ¥{price['amount']}")
        await showing(page, "#chart-total", "3 orders placed · 1 paid")
        assert await page.evaluate("document.querySelector('#error').hidden") is True, await page.text("#error")

        # The key stays in this tab: a reload connects again without asking.
        await page.goto(site.dashboard)
        await page.wait_for(LIVE, timeout=WITHIN_SECONDS)
        await showing(page, ORDERS_LAST_HOUR, orders + 3)
        assert page.problems == []


async def test_the_dashboard_connects_again_when_the_connection_drops(site: Site, tmp_path: Path) -> None:
    async with relay_to(site.server) as relay, browser(site, tmp_path) as page:
        await connect_as_operator(page, site, through=relay.url)
        orders = await shown(page, ORDERS_LAST_HOUR)
        available = await shown(page, AVAILABLE)

        relay.cut()

        await page.wait_for("document.querySelector('#status').dataset.state === 'retrying'", timeout=WITHIN_SECONDS)
        await page.wait_for(LIVE, timeout=WITHIN_SECONDS)
        await place_orders(site, 1)
        await showing(page, ORDERS_LAST_HOUR, orders + 1)
        await showing(page, AVAILABLE, available - 1)
        assert await page.evaluate("document.querySelector('#error').hidden") is True, await page.text("#error")
        assert page.problems == []


async def test_a_key_the_gateway_does_not_know_is_refused_on_the_page(site: Site, tmp_path: Path) -> None:
    async with browser(site, tmp_path) as page:
        await page.goto(site.dashboard)
        await page.type_into("#admin-key", "qy_0000000000_not-a-key")
        await page.click("#connect-button")

        await page.wait_for("document.querySelector('#status').dataset.state === 'refused'", timeout=WITHIN_SECONDS)
        assert "the key was refused" in (await page.text("#error") or "")
        assert await page.evaluate("document.querySelector('#error').hidden") is False
        assert await page.evaluate("document.querySelector('#connect-button').disabled") is False
        assert page.problems == []
