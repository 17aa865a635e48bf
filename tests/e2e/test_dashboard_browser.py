"""An operator watches /dashboard in a real browser while buyers order through the API.

A uvicorn process serves the gateway on a database of its own with the demo data (a
Chinese catalog, so the page speaks Chinese until told otherwise); headless Chromium
(Debian's package, driven over the DevTools protocol, on a machine with no CJK font and
no way out to the internet) opens the page, the operator types an admin key and connects,
and the page's numbers must follow the orders placed over HTTP. A failing test leaves a
screenshot in its tmp folder.
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
from tests.e2e.server import Server, free_port, running_gateway
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
# The page has looked at the public catalog and chosen its language from it.
CATALOG_LANGUAGE = "document.documentElement.dataset.languageFrom === 'catalog'"
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
    async with demo_site(tmp_path) as opened:
        yield opened


@contextlib.asynccontextmanager
async def demo_site(tmp_path: Path, *, suppliers: bool = False) -> AsyncIterator[Site]:
    """The demo catalog behind a real gateway; `suppliers`: with the demo's simulated suppliers
    (sim-fast refuses every top-up, sim-backup delivers), as `quanyi serve --demo` runs them."""
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
        port = free_port()
        if suppliers:
            env |= {"QUANYI_DEMO": "1", "QUANYI_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        async with running_gateway(url, settings.secret_key, tmp_path / "gateway.log", env=env, port=port) as server:
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
    async with open_page(offline=True) as page:
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
    await page.wait_for(CATALOG_LANGUAGE, timeout=WITHIN_SECONDS)
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


async def place_orders(
    site: Site, count: int, *, sku_id: str | None = None, quantity: int = 1, phone: str = "1380013{n:04d}",
    status: str = "PENDING_PAYMENT", account: str | None = None,
) -> list[dict[str, Any]]:
    """`count` guest orders of `quantity` units of a SKU on the public channel web, as buyers send them."""
    placed = []
    async with httpx.AsyncClient(base_url=site.server.url, timeout=WITHIN_SECONDS) as http:
        for n in range(count):
            given = {
                "channel": "web",
                "idempotencyKey": f"dashboard-{uuid.uuid4().hex}",
                "lines": [{"skuId": sku_id or site.sku_id, "quantity": quantity}],
                "buyer": {"phone": phone.format(n=n), **({"rechargeAccount": account} if account else {})},
            }
            answer = (await http.post("/graphql", json={"query": PLACE, "variables": {"input": given}})).json()
            payload = answer["data"]["placeOrder"]
            assert (payload["userErrors"], payload["order"]["status"]) == ([], status), answer
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
        # Units sold and their revenue on one basis (paid), units ordered beside them.
        await showing(page, TOP_SKU, "售出 0 件 · ¥0.00 · 下单 3 件")
        await showing(page, "#chart-total", "下单 3 笔 · 已支付 0 笔")

        await pay(site, placed[0])

        price = placed[0]["total"]
        assert price["currency"] == "CNY"
        await showing(page, REVENUE_LAST_HOUR, f"¥{price['amount']}")
        await showing(page, TOP_SKU, f"售出 1 件 · ¥{price['amount']} · 下单 3 件")
        await showing(page, "#chart-total", "下单 3 笔 · 已支付 1 笔")
        # Reserved follows sales: the paid unit is delivered, so it is sold, no longer held.
        await showing(page, RESERVED, 2)
        await showing(page, AVAILABLE, available - 3)
        assert await page.evaluate("document.querySelector('#error').hidden") is True, await page.text("#error")
        # Buyers by segment, for an operator's key: every segment named, with its count.
        segments = await page.text("#buyer-segments")
        assert all(name in segments for name in ("新客", "活跃", "流失风险", "高价值", "可疑", "沉睡")), segments

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
        await page.wait_for(CATALOG_LANGUAGE, timeout=WITHIN_SECONDS)
        await page.type_into("#admin-key", "qy_0000000000_not-a-key")
        await page.click("#connect-button")

        await page.wait_for("document.querySelector('#status').dataset.state === 'refused'", timeout=WITHIN_SECONDS)
        assert "密钥被拒绝" in (await page.text("#error") or "")
        assert await page.evaluate("document.querySelector('#error').hidden") is False
        assert await page.evaluate("document.querySelector('#connect-button').disabled") is False
        assert page.problems == []


async def choose_language(page: Page, lang: str) -> None:
    await page.evaluate(
        f"(() => {{ const s = document.querySelector('#lang'); s.value = {lang!r};"
        " s.dispatchEvent(new Event('change')); })()"
    )


async def test_the_page_speaks_the_catalogs_chinese_and_english_when_asked(site: Site, tmp_path: Path) -> None:
    async with browser(site, tmp_path) as page:
        await connect_as_operator(page, site)
        assert await page.evaluate("document.documentElement.lang") == "zh-CN"
        assert await page.text("#top-title") == "热销 SKU · 最近 1 小时"
        assert await page.text('[data-tile="review-queue"] h2') == "待审核订单"

        await choose_language(page, "en")

        assert await page.text("#top-title") == "Top SKUs · last hour"
        assert await page.text('[data-tile="review-queue"] .note') == "orders waiting for an operator's review now, however old"
        assert await page.text("#status-text") == "Live"
        # The choice stays in this browser, whatever the catalog.
        await page.goto(site.dashboard)
        await page.wait_for(LIVE, timeout=WITHIN_SECONDS)
        assert await page.evaluate("document.documentElement.lang") == "en"
        assert await page.text("#stock-title") == "Stock of hot SKUs"
        assert page.problems == []


async def test_chinese_is_drawn_with_the_font_the_page_ships(site: Site, tmp_path: Path) -> None:
    """This machine has no CJK font: without the page's own, Chinese would be empty boxes."""
    async with browser(site, tmp_path) as page:
        await connect_as_operator(page, site)
        await showing(page, AVAILABLE, await shown(page, AVAILABLE))
        await page.wait_for("document.fonts.check('14px \"Quanyi Sans SC\"', '热销')", timeout=WITHIN_SECONDS)

        for selector in ("#top-title", '[data-tile="review-queue"] h2', f'#stock [data-sku="{SKU}"] td:nth-child(2)'):
            fonts = await page.fonts_of(selector)
            assert fonts and all(font["isCustomFont"] and font["glyphCount"] > 0 for font in fonts), (selector, fonts)
        assert await page.text(f'#stock [data-sku="{SKU}"] td:nth-child(2)') == "Q币 10 元"
        assert page.problems == []


async def test_low_stock_a_failing_supplier_and_the_review_queue_are_alerts(tmp_path: Path) -> None:
    async with demo_site(tmp_path, suppliers=True) as site, browser(site, tmp_path) as page:
        await connect_as_operator(page, site)
        await showing(page, "#alerts li", "暂无告警")
        skus = await sku_ids(site, "QB-30", "TXV-MONTH")

        # A virtual-operator number: the demo's risk rule holds the order for review.
        await place_orders(site, 1, phone="17012345678", status="REVIEW")
        # 31 of QB-30's 40 codes: 9 left, and buyers are ordering it.
        await place_orders(site, 1, sku_id=skus["QB-30"], quantity=31)
        # A paid top-up: sim-fast refuses it (sim-backup then delivers it).
        (topup,) = await place_orders(site, 1, sku_id=skus["TXV-MONTH"], account="12345678")
        await pay(site, topup)

        await page.wait_for("document.querySelector('#alerts').dataset.count === '3'", timeout=WITHIN_SECONDS)
        assert await page.text('#alerts [data-alert="SUPPLIER_FAILING"][data-subject="sim-fast"]') == (
            "供应商 模拟供应商 A（sim-fast）最近 15 分钟失败 1 次")
        assert await page.text('#alerts [data-alert="LOW_STOCK"][data-subject="QB-30"]') == "Q币 30 元（QB-30）仅剩 9 件，正在热销"
        review = await page.text('#alerts [data-alert="REVIEW_QUEUE"]') or ""
        assert review.startswith("1 个订单等待风控审核，最早一单下于 "), review
        assert await number(page, '[data-tile="review-queue"] .value') == 1
        # Most severe first.
        assert await page.evaluate("[...document.querySelectorAll('#alerts li')].map(li => li.dataset.alert)") == [
            "SUPPLIER_FAILING", "LOW_STOCK", "REVIEW_QUEUE"]

        await choose_language(page, "en")
        assert await page.text('#alerts [data-alert="LOW_STOCK"][data-subject="QB-30"]') == "Q币 30 元 (QB-30) has 9 left and is selling"
        assert page.problems == []


async def sku_ids(site: Site, *codes: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=site.server.url, timeout=WITHIN_SECONDS) as http:
        answer = (await http.post("/graphql", json={"query": '{ products(channel: "web", first: 50) { edges { node { skus { id code } } } } }'})).json()
    found = {sku["code"]: sku["id"] for edge in answer["data"]["products"]["edges"] for sku in edge["node"]["skus"]}
    return {code: found[code] for code in codes}
