"""A buyer on the demo H5 storefront (/shop) in a real browser: the channel's catalog with
live stock, a guest order paid through the simulated WeChat Pay's H5 cashier (there and back,
as WeChat Pay's redirect_url does), the order's status live, and its code revealed.

A uvicorn process serves the gateway in demo mode (simulated suppliers and payment
providers); headless Chromium, with no way out to the internet, drives the page."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from models import Sku
from schema.relay import encode_id
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from tests.e2e.chromium import BrowserError, Page, open_page
from tests.e2e.server import Server, free_port, running_gateway
from tests.e2e.shop import migrated_database, shop_settings

pytestmark = pytest.mark.e2e

SKU = "QB-10"
ITEM = f'#skus li[data-code="{SKU}"]'
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }
"""


@contextlib.asynccontextmanager
async def demo_shop(folder: Path) -> AsyncIterator[tuple[Server, str]]:
    async with migrated_database(folder) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            await seed_demo(db, SecretBox(settings.secret_key))
            async with db.sessions() as session:
                sku_pk = await session.scalar(select(Sku.id).where(Sku.code == SKU))
        finally:
            await db.dispose()
        port = free_port()
        env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix, "QUANYI_DEMO": "1",
               "QUANYI_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        async with running_gateway(url, settings.secret_key, folder / "gateway.log", env=env, port=port) as server:
            yield server, encode_id("Sku", sku_pk or 0)


async def _seen(page: Page, expression: str) -> object:
    """The expression's value, or None while the page is between documents."""
    try:
        return await page.evaluate(expression)
    except BrowserError:
        return None


async def _until(page: Page, expression: str, timeout: float = 45.0) -> object:
    return await page.poll(lambda: _seen(page, expression), bool, timeout=timeout, what=expression)


async def test_a_guest_buys_a_card_code_pays_with_wechat_pay_h5_and_sees_it_delivered(tmp_path: Path) -> None:
    async with demo_shop(tmp_path) as (server, sku_id), open_page(offline=True) as page:
        try:
            await page.goto(f"{server.url}/shop")
            await _until(page, f"document.querySelector('{ITEM} .available')?.dataset.available")
            await _until(page, "document.querySelector('#live').dataset.state === 'live'")
            before = int(await page.evaluate(f"document.querySelector('{ITEM} .available').dataset.available"))
            assert await page.text("h1") == "权 权益商城"

            # Another buyer takes one: the page's stock follows, live.
            async with httpx.AsyncClient(base_url=server.url) as http:
                placed = await http.post("/graphql", json={"query": PLACE, "variables": {"input": {
                    "channel": "h5", "idempotencyKey": uuid.uuid4().hex, "lines": [{"skuId": sku_id, "quantity": 1}],
                    "buyer": {"phone": "13900139000"}}}})
            assert placed.json()["data"]["placeOrder"]["userErrors"] == []
            await _until(page, f"document.querySelector('{ITEM} .available').dataset.available === '{before - 1}'")

            await page.evaluate(f"document.querySelector('{ITEM} button').scrollIntoView({{block: 'center'}})")
            await page.click(f"{ITEM} button")
            await _until(page, "location.pathname.includes('/demo-payments/wechatpay/sim/h5/') "
                               "&& document.readyState === 'complete'")
            assert "微信支付（模拟）" in (await page.text("h1") or "")
            await page.click("form button")

            await _until(page, "location.pathname === '/shop' && "
                               "document.querySelector('#order-status')?.dataset.status === 'DELIVERED'", timeout=60)
            secret = await _until(page, "document.querySelector('#codes .secret')?.textContent")
            assert re.fullmatch(r"[0-9A-F]{4}(-[0-9A-F]{4}){3}", str(secret))
            assert await page.text("#order-status") == "已发货"
            assert [url for url in page.requested if not url.startswith(server.url)] == []
            assert page.problems == []
        except BaseException as error:
            with contextlib.suppress(Exception):
                error.add_note(f"screenshot: {await page.screenshot(tmp_path / 'shop-failure.png')}")
            error.add_note(f"page problems: {page.problems}")
            error.add_note(f"gateway log (tail):\n{server.output()[-3000:]}")
            raise
