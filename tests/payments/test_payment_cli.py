"""`quanyi payment-sim` and `quanyi payment-config`: the simulators as their own process, and
a gateway pointed at them with the settings it wrote, as at the real providers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from gateway import create_app
from models import PaymentAccount, Sku
from schema.relay import encode_id
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from tests.e2e.shop import migrated_database, shop_settings
from tests.payments.conftest import CREATE, PLACE
from tests.suppliers.conftest import free_port
from tests.support import GraphQLClient

ROOT = Path(__file__).resolve().parents[2]


async def _quanyi(*args: str, env: dict[str, str]) -> tuple[int, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    environment.update(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from gateway import main; main()", *args, cwd=ROOT, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


@contextlib.asynccontextmanager
async def payment_sim(port: int, keys: Path) -> AsyncIterator[None]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from gateway import main; main()", "payment-sim", "--port", str(port),
        "--keys", str(keys), "--wechat-app-id", "wx-cli-mini", cwd=ROOT, env=environment,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient() as client, asyncio.timeout(30):
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{port}/wechatpay/control")).status_code == 200:
                        break
                await asyncio.sleep(0.2)
        yield
    finally:
        process.terminate()
        await process.wait()


def _settings_file(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line)


async def test_a_gateway_configured_from_the_simulators_settings_starts_payments_with_them(tmp_path: Path) -> None:
    port = free_port()
    async with payment_sim(port, tmp_path / "keys"), migrated_database(tmp_path) as url:
        settings = replace(shop_settings(url), public_url="http://127.0.0.1:9/")
        env = {**_settings_file(tmp_path / "keys" / "payment.env"), "QUANYI_DATABASE_URL": url,
               "QUANYI_SECRET_KEY": base64.urlsafe_b64encode(settings.secret_key).decode()}
        wechat = await _quanyi("payment-config", "--provider", "wechatpay", "--channel", "mini", env=env)
        alipay = await _quanyi("payment-config", "--provider", "alipay", env=env)
        broken = await _quanyi("payment-config", "--provider", "wechatpay",
                               env={**env, "QUANYI_WECHATPAY_APIV3_KEY": "short"})
        assert wechat == (0, "wechatpay app wx-cli-mini now serves channel mini "
                             "(keys sealed in the database; restart running gateways to use it)\n")
        assert alipay[0] == 0
        assert broken == (2, "quanyi: QUANYI_WECHATPAY_APIV3_KEY is the 32-character API v3 key\n")

        db = Database.connect(settings)
        try:
            await seed_demo(db, SecretBox(settings.secret_key))
            async with db.sessions() as session:
                sku = await session.scalar(select(Sku.id).where(Sku.code == "QB-10"))
                sealed = [bytes(row.secret_ciphertext) for row in await session.scalars(select(PaymentAccount))]
            assert len(sealed) == 2 and not any(b"PRIVATE KEY" in s or env["QUANYI_WECHATPAY_APIV3_KEY"].encode() in s
                                                for s in sealed)
            app = create_app(settings)
            async with LifespanManager(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                                               base_url="http://quanyi.test") as http:
                gql = GraphQLClient(http)
                placed = (await gql(PLACE, {"input": {
                    "channel": "mini", "idempotencyKey": uuid.uuid4().hex,
                    "lines": [{"skuId": encode_id("Sku", sku), "quantity": 1}], "buyer": {"phone": "13800138000"}}}
                ))["data"]["placeOrder"]
                started = []
                for provider, method in (("WECHAT_PAY", "MINI_PROGRAM"), ("ALIPAY", "MINI_PROGRAM")):
                    answer = await gql(CREATE, {"input": {"orderId": placed["order"]["id"], "provider": provider,
                                                          "method": method, "openId": "o-cli"}},
                                       key=placed["accessToken"])
                    started.append(answer["data"]["createPayment"])
        finally:
            await db.dispose()
    assert [s["userErrors"] for s in started] == [[], []]
    assert started[0]["payment"]["clientParams"]["appId"] == "wx-cli-mini"
    assert started[1]["payment"]["clientParams"]["tradeNO"].startswith("20")


async def test_payment_config_names_what_is_missing_or_unreadable(tmp_path: Path) -> None:
    env = {"QUANYI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/q.db", "QUANYI_ALIPAY_APP_ID": "2021",
           "QUANYI_ALIPAY_PUBLIC_KEY_FILE": str(tmp_path / "nothing.pem")}
    unreadable = await _quanyi("payment-config", "--provider", "alipay", env=env)
    missing = await _quanyi("payment-config", "--provider", "alipay", env={**env, "QUANYI_ALIPAY_APP_ID": ""})
    assert (unreadable[0], unreadable[1].splitlines()[-1]) == (
        2, f"quanyi: QUANYI_ALIPAY_PUBLIC_KEY_FILE: cannot read {tmp_path / 'nothing.pem'} (No such file or directory)")
    assert (missing[0], missing[1].splitlines()[-1]) == (2, "quanyi: QUANYI_ALIPAY_APP_ID is required")
