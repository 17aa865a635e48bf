"""The demo's payment providers: a simulated WeChat Pay and Alipay served by the gateway
process itself, under /demo-payments/wechatpay and /demo-payments/alipay.

`quanyi serve --demo` (or QUANYI_PAYMENT_SIM=1) makes fresh key pairs for both sides (the
merchant's and the provider's), points the payment accounts at the simulators (the
mini-program `mini` and the H5 site `h5` under app ids of their own, every other channel
under a third) and runs them, so a demo order can be paid as a buyer would pay it. One
gateway process only: each process would have simulators (and keys) of its own.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount

from providers import keys
from providers.alipay_sim import create_alipay_sim
from providers.base import Provider
from providers.sim_courier import Faults
from providers.wechatpay_sim import Merchant, create_wechatpay_sim
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.payments import accounts

PREFIX = "/demo-payments"
MCHID = "1900000109"
WECHAT_APP_IDS = {"mini": "wxd0c0mini0000001", "h5": "wxd0c0h5000000002", accounts.EVERY_CHANNEL: "wxd0c0web00000003"}
ALIPAY_APP_ID = "2021000000000001"


@dataclass
class DemoProviders:
    """The simulators and the keys of both sides (the merchant's stay in this process)."""

    wechatpay: Starlette
    alipay: Starlette
    merchant_key: str
    platform_public_key: str
    platform_key_id: str
    api_v3_key: str
    serial_no: str
    app_key: str
    alipay_public_key: str

    def mounts(self) -> list[Mount]:
        return [Mount(f"{PREFIX}/wechatpay", app=self.wechatpay), Mount(f"{PREFIX}/alipay", app=self.alipay)]


def simulators(transport: httpx.AsyncBaseTransport | None = None, faults: Faults | None = None) -> DemoProviders:
    merchant_key, merchant_public = keys.new_pair()
    platform_key, platform_public = keys.new_pair()
    app_key, app_public = keys.new_pair()
    alipay_key, alipay_public = keys.new_pair()
    api_v3_key, serial_no = secrets.token_hex(16), secrets.token_hex(20).upper()
    platform_key_id = "PUB_KEY_ID_" + secrets.token_hex(12).upper()
    merchant = Merchant(MCHID, serial_no, merchant_public, api_v3_key, frozenset(WECHAT_APP_IDS.values()))
    wechatpay = create_wechatpay_sim(merchant, platform_key, platform_key_id, faults=faults or Faults(),
                                     transport=transport)
    alipay = create_alipay_sim(ALIPAY_APP_ID, app_public, alipay_key, faults=faults or Faults(), transport=transport)
    return DemoProviders(wechatpay, alipay, merchant_key, platform_public, platform_key_id, api_v3_key, serial_no,
                         app_key, alipay_public)


@contextlib.asynccontextmanager
async def running(demo: DemoProviders, db: Database, box: SecretBox, public_url: str) -> AsyncIterator[None]:
    """Point the payment accounts at the mounted simulators, and run the simulators."""
    base = public_url.rstrip("/") + PREFIX
    async with db.sessions() as session, session.begin():
        for scope, app_id in WECHAT_APP_IDS.items():
            await accounts.configure(
                session, box, provider=Provider.WECHAT_PAY, scope=scope, app_id=app_id, merchant_id=MCHID,
                base_url=f"{base}/wechatpay", provider_public_key=demo.platform_public_key,
                private_key=demo.merchant_key, api_key=demo.api_v3_key, key_serial=demo.serial_no,
                provider_key_id=demo.platform_key_id,
            )
        await accounts.configure(
            session, box, provider=Provider.ALIPAY, scope=accounts.EVERY_CHANNEL, app_id=ALIPAY_APP_ID,
            merchant_id=ALIPAY_APP_ID, base_url=f"{base}/alipay/gateway.do",
            provider_public_key=demo.alipay_public_key, private_key=demo.app_key,
        )
    async with contextlib.AsyncExitStack() as stack:
        for app in (demo.wechatpay, demo.alipay):
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield
