"""A buyer pays a demo order through the simulated WeChat Pay and Alipay, the way their
front ends do, and the order is delivered on the providers' notifications."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select

from models import PaymentNotification
from providers import keys
from providers import wechatpay_wire as wire
from services.demo.payments import ALIPAY_APP_ID, WECHAT_APP_IDS
from tests.payments.conftest import Till

DELIVERED = {"status": "DELIVERED"}


def _delivered(seen: dict[str, Any]) -> bool:
    return seen["status"] == "DELIVERED"


async def _paid_once(till: Till, reference: str) -> int:
    async with till.db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(PaymentNotification)
                                     .where(PaymentNotification.notification_id.like(f"%:{reference}"))) or 0


async def test_a_mini_program_buyer_pays_with_wechat_pay_and_the_order_is_delivered(till: Till) -> None:
    order = await till.place(channel="mini")
    created = await till.create_payment(order, "WECHAT_PAY", "MINI_PROGRAM", open_id="o-mini-buyer-1")
    assert created["userErrors"] == []
    params = created["payment"]["clientParams"]
    # What wx.requestPayment takes, under the mini-program's own app id, signed by the merchant.
    assert sorted(params) == ["appId", "nonceStr", "package", "paySign", "signType", "timeStamp"]
    assert params["appId"] == WECHAT_APP_IDS["mini"] and params["signType"] == "RSA"
    assert params["package"].startswith("prepay_id=")
    merchant_public = keys.public_pem(till.providers.merchant_key)
    assert wire.verify_pay_sign(merchant_public, params)
    assert created["payment"]["status"] == "STARTED"

    paid = await till.http.post("/demo-payments/wechatpay/sim/request-payment", json=params)
    assert paid.json() == {"errMsg": "requestPayment:ok"}

    seen = await till.until(order, _delivered)
    assert seen["status"] == "DELIVERED"
    assert seen["paymentReference"].startswith("4200")
    assert [e["toStatus"] for e in seen["events"]][-3:] == ["PAID", "FULFILLING", "DELIVERED"]
    assert any(e["actor"] == f"wechat_pay:{seen['paymentReference']}" for e in seen["events"])
    assert seen["refunds"] == []
    assert await _paid_once(till, seen["paymentReference"]) == 1


async def test_an_h5_buyer_is_sent_to_wechat_pay_under_the_h5_sites_app_id(till: Till) -> None:
    order = await till.place(channel="h5")
    created = await till.create_payment(order, "WECHAT_PAY", "H5")
    h5_url = created["payment"]["clientParams"]["h5Url"]
    cashier = await till.http.get(urlsplit(h5_url).path)
    assert "微信支付" in cashier.text
    trade = till.providers.wechatpay.state.sim.trades[order["number"]]
    assert trade.body["appid"] == WECHAT_APP_IDS["h5"] and trade.body["amount"] == {"total": 990, "currency": "CNY"}

    await till.http.post(urlsplit(h5_url).path)

    assert (await till.until(order, _delivered))["status"] == "DELIVERED"


async def test_asking_again_returns_the_same_payment_and_another_method_is_refused(till: Till) -> None:
    order = await till.place(channel="web")
    first = await till.create_payment(order, "WECHAT_PAY", "NATIVE")
    again = await till.create_payment(order, "WECHAT_PAY", "NATIVE")
    other = await till.create_payment(order, "WECHAT_PAY", "H5")
    assert again["payment"] == first["payment"]
    assert first["payment"]["clientParams"]["codeUrl"].startswith("weixin://wxpay/bizpayurl?pr=")
    assert other == {"payment": None, "userErrors": [{
        "field": "input.method", "code": "PAYMENT_STARTED", "message": "this order's payment was started as NATIVE"}]}

    await till.http.post("/demo-payments/wechatpay/sim/scan", json={"code_url": first["payment"]["clientParams"]["codeUrl"]})
    assert (await till.until(order, _delivered))["status"] == "DELIVERED"


async def test_a_phone_browser_pays_on_alipays_cashier_and_the_order_is_delivered(till: Till) -> None:
    order = await till.place(channel="h5")
    created = await till.create_payment(order, "ALIPAY", "WAP")
    url = urlsplit(created["payment"]["clientParams"]["url"])
    cashier = await till.http.get(f"{url.path}?{url.query}")
    assert "支付宝收银台" in cashier.text and "9.90" in cashier.text

    await till.http.post(f"{url.path.removesuffix('gateway.do')}sim/pay?{url.query}")

    seen = await till.until(order, _delivered)
    assert seen["status"] == "DELIVERED"
    assert any(e["actor"] == f"alipay:{seen['paymentReference']}" for e in seen["events"])


async def test_an_alipay_mini_program_pays_a_trade_created_for_it(till: Till) -> None:
    order = await till.place(channel="mini")
    created = await till.create_payment(order, "ALIPAY", "MINI_PROGRAM", open_id="074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5")
    trade_no = created["payment"]["clientParams"]["tradeNO"]
    assert till.providers.alipay.state.sim.trades[order["number"]].app_id == ALIPAY_APP_ID

    answer = await till.http.post("/demo-payments/alipay/sim/trade-pay", json={"tradeNO": trade_no})
    assert answer.json() == {"resultCode": "9000", "tradeNO": trade_no}

    seen = await till.until(order, _delivered)
    assert (seen["status"], seen["paymentReference"]) == ("DELIVERED", trade_no)


async def test_what_a_payment_needs_is_asked_for_by_name(till: Till) -> None:
    order = await till.place(channel="mini")
    no_payer = await till.create_payment(order, "WECHAT_PAY", "JSAPI")
    wrong_method = await till.create_payment(order, "ALIPAY", "NATIVE")
    stranger: dict[str, Any] = {**order, "token": None}
    unseen = await till.create_payment(stranger, "WECHAT_PAY", "NATIVE")
    assert no_payer["userErrors"][0]["code"] == "PAYER_REQUIRED"
    assert wrong_method["userErrors"][0]["code"] == "METHOD_UNSUPPORTED"
    assert unseen == {"payment": None, "userErrors": [{"field": "orderId", "code": "NOT_FOUND", "message": "no such order"}]}


async def test_a_paid_order_cannot_start_another_payment(till: Till, ) -> None:
    order = await till.place(channel="mini")
    created = await till.create_payment(order, "ALIPAY", "MINI_PROGRAM", open_id="2088000000000001")
    await till.http.post("/demo-payments/alipay/sim/trade-pay", json={"tradeNO": created["payment"]["clientParams"]["tradeNO"]})
    await till.until(order, _delivered)
    late = await till.create_payment(order, "WECHAT_PAY", "NATIVE")
    assert late["userErrors"][0]["code"] == "INVALID_STATE"


async def test_the_simulators_refuse_a_request_not_signed_by_the_merchant(till: Till) -> None:
    answer = await till.http.post("/demo-payments/wechatpay/v3/pay/transactions/native", json={"mchid": "1"},
                                  headers={"Authorization": 'WECHATPAY2-SHA256-RSA2048 mchid="1",nonce_str="x",signature="AAAA",timestamp="1",serial_no="x"'})
    assert (answer.status_code, answer.json()["code"]) == (401, "SIGN_ERROR")
    assert isinstance(answer, httpx.Response)


async def test_a_buyer_back_from_paying_finds_the_order_paid_when_every_notification_was_lost(till: Till) -> None:
    for sim in ("wechatpay", "alipay"):
        await till.http.post(f"/demo-payments/{sim}/control", json={"lose_first": 100, "schedule": []})
    try:
        wechat_order, alipay_order = await till.place(channel="mini"), await till.place(channel="mini")
        wechat = await till.create_payment(wechat_order, "WECHAT_PAY", "JSAPI", open_id="o-lost")
        alipay = await till.create_payment(alipay_order, "ALIPAY", "MINI_PROGRAM", open_id="2088000000000007")
        await till.http.post("/demo-payments/wechatpay/sim/request-payment", json=wechat["payment"]["clientParams"])
        await till.http.post("/demo-payments/alipay/sim/trade-pay", json={"tradeNO": alipay["payment"]["clientParams"]["tradeNO"]})
        await till.settle()
        unpaid = [(await till.order(o))["status"] for o in (wechat_order, alipay_order)]

        asked_again = [await till.create_payment(wechat_order, "WECHAT_PAY", "JSAPI", open_id="o-lost"),
                       await till.create_payment(alipay_order, "ALIPAY", "MINI_PROGRAM", open_id="2088000000000007")]
    finally:
        for sim in ("wechatpay", "alipay"):
            await till.http.post(f"/demo-payments/{sim}/control", json={"lose_first": 0, "schedule": [1, 2, 4]})

    assert unpaid == ["PENDING_PAYMENT", "PENDING_PAYMENT"]
    assert [(a["payment"]["status"], a["payment"]["clientParams"], a["userErrors"]) for a in asked_again] == [
        ("PAID", None, []), ("PAID", None, [])]
    for order in (wechat_order, alipay_order):
        assert (await till.until(order, _delivered))["status"] == "DELIVERED"


async def test_a_page_asking_for_its_payment_in_a_loop_does_not_flood_the_provider_with_queries(till: Till) -> None:
    order = await till.place(channel="mini")
    first = await till.create_payment(order, "WECHAT_PAY", "JSAPI", open_id="o-loop")
    sim = till.providers.wechatpay.state.sim
    before = sim.queries

    again = await asyncio.gather(*(till.create_payment(order, "WECHAT_PAY", "JSAPI", open_id="o-loop")
                                   for _ in range(20)))

    assert {a["payment"]["id"] for a in again} == {first["payment"]["id"]}
    assert {a["payment"]["status"] for a in again} == {"STARTED"}
    assert sim.queries - before == 1
