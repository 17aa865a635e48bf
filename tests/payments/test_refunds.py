"""Money going back through the provider that took it: a failed top-up's refund, and a
payment that arrived after its order was cancelled, are refunded through WeChat Pay's or
Alipay's refund API, and the provider's answer or notification marks them done."""

from __future__ import annotations

from typing import Any

from tests.payments.conftest import Till


def _refund_settled(seen: dict[str, Any]) -> bool:
    return bool(seen["refunds"]) and all(r["status"] in ("SUCCEEDED", "FAILED") for r in seen["refunds"])


async def test_a_failed_top_up_paid_with_wechat_pay_is_refunded_through_it(till: Till) -> None:
    order = await till.place("GS-60", channel="mini")
    created = await till.create_payment(order, "WECHAT_PAY", "MINI_PROGRAM", open_id="o-topup-buyer")
    await till.http.post("/demo-payments/wechatpay/sim/request-payment", json=created["payment"]["clientParams"])

    seen = await till.until(order, _refund_settled, seconds=30)

    assert seen["status"] == "REFUNDED"
    assert seen["refunds"] == [{"amount": {"amount": "6.00", "currency": "CNY"}, "status": "SUCCEEDED",
                                "reference": seen["paymentReference"]}]
    trade = till.providers.wechatpay.state.sim.trades[order["number"]]
    assert [(r["amount"]["refund"], r["amount"]["total"]) for r in trade.refunds.values()] == [(600, 600)]
    deliveries = (await till.http.get("/demo-payments/wechatpay/control/notifications")).json()
    assert [(d["kind"], d["accepted"]) for d in deliveries if d["out_trade_no"] == order["number"]] == [
        ("TRANSACTION.SUCCESS", 1), ("REFUND.SUCCESS", 1)]


async def test_a_failed_top_up_paid_with_alipay_is_refunded_through_it(till: Till) -> None:
    order = await till.place("GS-60", channel="h5")
    created = await till.create_payment(order, "ALIPAY", "MINI_PROGRAM", open_id="2088000000000003")
    await till.http.post("/demo-payments/alipay/sim/trade-pay", json={"tradeNO": created["payment"]["clientParams"]["tradeNO"]})

    seen = await till.until(order, _refund_settled, seconds=30)

    assert (seen["status"], [r["status"] for r in seen["refunds"]]) == ("REFUNDED", ["SUCCEEDED"])
    trade = till.providers.alipay.state.sim.trades[order["number"]]
    assert (list(trade.refunds.values()), trade.status) == ([600], "TRADE_CLOSED")


async def test_a_payment_after_the_order_was_cancelled_goes_back_through_the_provider(till: Till) -> None:
    order = await till.place(channel="web")
    created = await till.create_payment(order, "WECHAT_PAY", "NATIVE")
    cancelled = await till.gql('mutation C($id: ID!) { cancelOrder(orderId: $id) { order { status } } }',
                               {"id": order["id"]}, key=order["token"])
    assert cancelled["data"]["cancelOrder"]["order"]["status"] == "CANCELLED"

    await till.http.post("/demo-payments/wechatpay/sim/scan", json={"code_url": created["payment"]["clientParams"]["codeUrl"]})
    seen = await till.until(order, _refund_settled, seconds=30)

    assert seen["status"] == "CANCELLED"
    assert seen["refunds"] == [{"amount": {"amount": "9.90", "currency": "CNY"}, "status": "SUCCEEDED",
                                "reference": till.providers.wechatpay.state.sim.trades[order["number"]].transaction_id}]


async def test_an_order_paid_through_both_providers_gives_the_second_payment_back(till: Till) -> None:
    order = await till.place(channel="mini")
    wechat = await till.create_payment(order, "WECHAT_PAY", "JSAPI", open_id="o-twice")
    alipay = await till.create_payment(order, "ALIPAY", "MINI_PROGRAM", open_id="2088000000000004")
    await till.http.post("/demo-payments/wechatpay/sim/request-payment", json=wechat["payment"]["clientParams"])
    await till.until(order, lambda seen: seen["status"] == "DELIVERED")
    await till.http.post("/demo-payments/alipay/sim/trade-pay", json={"tradeNO": alipay["payment"]["clientParams"]["tradeNO"]})

    seen = await till.until(order, _refund_settled, seconds=30)

    assert seen["status"] == "DELIVERED"
    assert seen["refunds"] == [{"amount": {"amount": "9.90", "currency": "CNY"}, "status": "SUCCEEDED",
                                "reference": alipay["payment"]["clientParams"]["tradeNO"]}]


async def test_a_refund_whose_notification_never_comes_is_settled_by_asking_the_provider(till: Till) -> None:
    await till.http.post("/demo-payments/wechatpay/control", json={"drop_kinds": ["REFUND.SUCCESS"]})
    try:
        order = await till.place("GS-60", channel="mini")
        created = await till.create_payment(order, "WECHAT_PAY", "MINI_PROGRAM", open_id="o-no-refund-notice")
        await till.http.post("/demo-payments/wechatpay/sim/request-payment", json=created["payment"]["clientParams"])
        seen = await till.until(order, _refund_settled, seconds=30)
    finally:
        await till.http.post("/demo-payments/wechatpay/control", json={"drop_kinds": []})

    assert (seen["status"], [r["status"] for r in seen["refunds"]]) == ("REFUNDED", ["SUCCEEDED"])
    deliveries = (await till.http.get("/demo-payments/wechatpay/control/notifications")).json()
    assert [d["kind"] for d in deliveries if d["out_trade_no"] == order["number"]] == ["TRANSACTION.SUCCESS"]
