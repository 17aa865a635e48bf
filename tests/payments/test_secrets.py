"""The merchants' keys are sealed in the database and never written to a log."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from models import PaymentAccount
from providers.base import Provider
from tests.payments.conftest import Till


def _pem_body(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if "-----" not in line)


async def test_merchant_keys_are_sealed_and_never_logged(till: Till, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [till.providers.api_v3_key, _pem_body(till.providers.merchant_key)[:64],
               _pem_body(till.providers.app_key)[:64]]
    order = await till.place(channel="mini")
    created = await till.create_payment(order, "WECHAT_PAY", "JSAPI", open_id="o-secret")
    await till.http.post("/demo-payments/wechatpay/sim/request-payment", json=created["payment"]["clientParams"])
    await till.until(order, lambda seen: seen["status"] == "DELIVERED")
    other = await till.place(channel="mini")
    await till.create_payment(other, "ALIPAY", "MINI_PROGRAM", open_id="2088000000000005")

    async with till.db.sessions() as session:
        rows = list(await session.scalars(select(PaymentAccount)))
    stored = b"".join(bytes(row.secret_ciphertext) + row.provider_public_key.encode() for row in rows)
    assert len(rows) == 4
    assert [secret for secret in secrets if secret.encode() in stored] == []
    assert [secret for secret in secrets if secret in caplog.text] == []
    adapters = [adapter for provider in Provider for adapter in await till.app.state.payments.of_provider(provider)]
    shown = " ".join(repr(adapter) + repr(adapter.account) for adapter in adapters)
    assert len(adapters) == 4 and [secret for secret in secrets if secret in shown] == []
