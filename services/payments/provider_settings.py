"""The QUANYI_WECHATPAY_* and QUANYI_ALIPAY_* settings, read by `quanyi payment-config` and
written as a payment account (services/payments/accounts.py), the keys sealed.

WeChat Pay: QUANYI_WECHATPAY_MCHID, QUANYI_WECHATPAY_APP_ID (the channel's app id: a
mini-program's or an official account's), QUANYI_WECHATPAY_APIV3_KEY,
QUANYI_WECHATPAY_PRIVATE_KEY_FILE (the merchant's apiclient_key.pem),
QUANYI_WECHATPAY_CERT_SERIAL (its certificate's serial number),
QUANYI_WECHATPAY_PUBLIC_KEY_FILE and QUANYI_WECHATPAY_PUBLIC_KEY_ID (WeChat Pay's platform
public key, PEM, and its PUB_KEY_ID_…), QUANYI_WECHATPAY_BASE_URL (default WeChat Pay's).
Alipay: QUANYI_ALIPAY_APP_ID, QUANYI_ALIPAY_PRIVATE_KEY_FILE (the app's private key),
QUANYI_ALIPAY_PUBLIC_KEY_FILE (Alipay's public key), QUANYI_ALIPAY_GATEWAY (default Alipay's).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from providers import alipay, keys, wechatpay
from providers.base import Provider


def _required(env: Mapping[str, str], name: str) -> str:
    value = (env.get(name) or "").strip()
    if not value:
        raise ValueError(f"{name} is required")
    return value


def _pem(env: Mapping[str, str], name: str, *, private: bool) -> str:
    path = Path(_required(env, name))
    try:
        text = path.read_text(encoding="ascii")
    except OSError as error:
        raise ValueError(f"{name}: cannot read {path} ({error.strerror})") from None
    try:
        keys.private_key(text) if private else keys.public_key(text)
    except ValueError:
        raise ValueError(f"{name}: {path} is not an RSA {'private' if private else 'public'} key in PEM") from None
    return text


def account_settings(provider: Provider, env: Mapping[str, str]) -> dict[str, Any]:
    """The keyword arguments of accounts.configure (less session, box and scope)."""
    if provider is Provider.WECHAT_PAY:
        api_key = _required(env, "QUANYI_WECHATPAY_APIV3_KEY")
        if len(api_key.encode()) != 32:
            raise ValueError("QUANYI_WECHATPAY_APIV3_KEY is the 32-character API v3 key")
        return dict(
            provider=provider, app_id=_required(env, "QUANYI_WECHATPAY_APP_ID"),
            merchant_id=_required(env, "QUANYI_WECHATPAY_MCHID"),
            base_url=env.get("QUANYI_WECHATPAY_BASE_URL") or wechatpay.BASE_URL,
            provider_public_key=_pem(env, "QUANYI_WECHATPAY_PUBLIC_KEY_FILE", private=False),
            provider_key_id=_required(env, "QUANYI_WECHATPAY_PUBLIC_KEY_ID"),
            private_key=_pem(env, "QUANYI_WECHATPAY_PRIVATE_KEY_FILE", private=True),
            key_serial=_required(env, "QUANYI_WECHATPAY_CERT_SERIAL"), api_key=api_key,
        )
    app_id = _required(env, "QUANYI_ALIPAY_APP_ID")
    return dict(
        provider=provider, app_id=app_id, merchant_id=app_id, base_url=env.get("QUANYI_ALIPAY_GATEWAY") or alipay.GATEWAY,
        provider_public_key=_pem(env, "QUANYI_ALIPAY_PUBLIC_KEY_FILE", private=False),
        private_key=_pem(env, "QUANYI_ALIPAY_PRIVATE_KEY_FILE", private=True),
    )
