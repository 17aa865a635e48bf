"""`quanyi payment-sim`: both simulated providers on one address, with key pairs of their own.

WeChat Pay is served under /wechatpay and Alipay under /alipay. The keys of both sides are
made at start and written to a folder, with the settings `quanyi payment-config` reads, so
a gateway can be pointed at the simulators exactly as at the real providers.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount

from providers import keys
from providers.alipay_sim import create_alipay_sim
from providers.sim_courier import DEMO_SCHEDULE, Faults
from providers.wechatpay_sim import Merchant, create_wechatpay_sim

MCHID = "1900000109"
ALIPAY_APP_ID = "2021000000000001"


def create_payment_sim(folder: Path, base_url: str, app_ids: list[str], schedule: list[float] | None = None) -> Starlette:
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}

    def write(name: str, text: str) -> str:
        path = folder / name
        path.write_text(text, encoding="ascii")
        path.chmod(0o600)
        written[name] = str(path.resolve())
        return str(path.resolve())

    merchant_key, merchant_public = keys.new_pair()
    platform_key, platform_public = keys.new_pair()
    app_key, app_public = keys.new_pair()
    alipay_key, alipay_public = keys.new_pair()
    api_v3_key, serial = secrets.token_hex(16), secrets.token_hex(20).upper()
    key_id = "PUB_KEY_ID_" + secrets.token_hex(12).upper()
    settings = {
        "QUANYI_WECHATPAY_MCHID": MCHID, "QUANYI_WECHATPAY_APP_ID": app_ids[0],
        "QUANYI_WECHATPAY_APIV3_KEY": api_v3_key, "QUANYI_WECHATPAY_CERT_SERIAL": serial,
        "QUANYI_WECHATPAY_PRIVATE_KEY_FILE": write("wechatpay_merchant_key.pem", merchant_key),
        "QUANYI_WECHATPAY_PUBLIC_KEY_FILE": write("wechatpay_platform_public.pem", platform_public),
        "QUANYI_WECHATPAY_PUBLIC_KEY_ID": key_id, "QUANYI_WECHATPAY_BASE_URL": f"{base_url}/wechatpay",
        "QUANYI_ALIPAY_APP_ID": ALIPAY_APP_ID,
        "QUANYI_ALIPAY_PRIVATE_KEY_FILE": write("alipay_app_key.pem", app_key),
        "QUANYI_ALIPAY_PUBLIC_KEY_FILE": write("alipay_public.pem", alipay_public),
        "QUANYI_ALIPAY_GATEWAY": f"{base_url}/alipay/gateway.do",
    }
    write("payment.env", "".join(f"{name}={value}\n" for name, value in settings.items()))
    faults = Faults(schedule=list(schedule if schedule is not None else DEMO_SCHEDULE))
    merchant = Merchant(MCHID, serial, merchant_public, api_v3_key, frozenset(app_ids))
    return Starlette(routes=[
        Mount("/wechatpay", app=create_wechatpay_sim(merchant, platform_key, key_id, faults=faults)),
        Mount("/alipay", app=create_alipay_sim(ALIPAY_APP_ID, app_public, alipay_key,
                                               faults=Faults(schedule=list(faults.schedule)))),
    ])
