"""The providers' delivery habits are harmless: every notification sent several times, some
lost on the way and retried on the schedule, arriving in any order (a refund's before its
payment's acknowledgement, one order's before another's)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from models import PaymentNotification, PaymentRefusal
from providers.sim_courier import Faults
from tests.payments.conftest import Till, open_till


@pytest.fixture(scope="module")
async def rough(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Till]:
    faults = Faults(duplicates=2, shuffle_ms=300, lose_first=1, schedule=[0.05, 0.1, 0.2, 0.4])
    async with open_till(tmp_path_factory.mktemp("rough-deliveries"), faults) as opened:
        yield opened


async def _pay(till: Till, order: dict[str, Any], provider: str) -> None:
    if provider == "WECHAT_PAY":
        created = await till.create_payment(order, provider, "JSAPI", open_id="o-rough")
        await till.http.post("/demo-payments/wechatpay/sim/request-payment", json=created["payment"]["clientParams"])
    else:
        created = await till.create_payment(order, provider, "MINI_PROGRAM", open_id="2088000000000009")
        await till.http.post("/demo-payments/alipay/sim/trade-pay", json={"tradeNO": created["payment"]["clientParams"]["tradeNO"]})


async def test_duplicate_lost_and_out_of_order_notifications_pay_each_order_once(rough: Till) -> None:
    orders = [await rough.place(channel="mini") for _ in range(6)]
    top_ups = [await rough.place("GS-60", channel="mini") for _ in range(2)]
    providers = ["WECHAT_PAY", "ALIPAY"]
    await asyncio.gather(*(_pay(rough, order, providers[i % 2]) for i, order in enumerate(orders + top_ups)))

    await rough.settle()
    seen = [await rough.until(order, lambda s: s["status"] == "DELIVERED") for order in orders]
    refunded = [await rough.until(order, lambda s: [r["status"] for r in s["refunds"]] == ["SUCCEEDED"], 30)
                for order in top_ups]
    await rough.settle()

    assert [s["status"] for s in seen] == ["DELIVERED"] * 6
    assert [[e["toStatus"] for e in s["events"]].count("PAID") for s in seen + refunded] == [1] * 8
    assert [(s["status"], [r["status"] for r in s["refunds"]]) for s in refunded] == [("REFUNDED", ["SUCCEEDED"])] * 2
    deliveries = [d for sim in ("wechatpay", "alipay")
                  for d in (await rough.http.get(f"/demo-payments/{sim}/control/notifications")).json()]
    # Each notification: lost once, accepted, then sent twice more and acknowledged each time.
    assert {(d["attempts"], d["accepted"]) for d in deliveries} == {(2, 3)}
    assert len(deliveries) == 8 + 2  # a payment each, and a refund each for the top-ups
    async with rough.db.sessions() as session:
        applied = await session.scalar(select(func.count()).select_from(PaymentNotification))
        refused = await session.scalar(select(func.count()).select_from(PaymentRefusal))
    assert (applied, refused) == (8, 0)
