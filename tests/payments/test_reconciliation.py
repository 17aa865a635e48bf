"""Reconciliation with the providers: their daily statements, downloaded in the formats they
publish, against our payments and refunds of the day; what differs is reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from providers import statements
from providers.base import StatementLine
from tests.payments.conftest import Till

CHINA = timezone(timedelta(hours=8))
RECONCILE = """
mutation R($provider: PaymentProvider!, $date: Date!) {
  reconcilePayments(provider: $provider, date: $date) {
    report { provider date records matched missingOnTheirSide missingOnOurSide amountMismatches statusMismatches
             items { kind reference ourAmount { amount } theirAmount { amount } ourStatus theirStatus } }
    userErrors { field code message }
  }
}
"""


def _today() -> str:
    return datetime.now(UTC).astimezone(CHINA).date().isoformat()


async def _reconcile(till: Till, provider: str, day: str | None = None, key: str | None = None) -> dict[str, Any]:
    return await till.gql(RECONCILE, {"provider": provider, "date": day or _today()}, key=key or till.keys.admin)


async def _pay_wechat(till: Till, order: dict[str, Any]) -> None:
    created = await till.create_payment(order, "WECHAT_PAY", "JSAPI", open_id="o-bill")
    await till.http.post("/demo-payments/wechatpay/sim/request-payment", json=created["payment"]["clientParams"])


async def test_a_days_payments_and_refunds_match_the_providers_statements(till: Till) -> None:
    delivered, refunded = await till.place(channel="mini"), await till.place("GS-60", channel="mini")
    await _pay_wechat(till, delivered)
    await _pay_wechat(till, refunded)
    by_alipay = await till.place(channel="h5")
    created = await till.create_payment(by_alipay, "ALIPAY", "MINI_PROGRAM", open_id="2088000000000011")
    await till.http.post("/demo-payments/alipay/sim/trade-pay", json={"tradeNO": created["payment"]["clientParams"]["tradeNO"]})
    await till.until(delivered, lambda s: s["status"] == "DELIVERED")
    await till.until(by_alipay, lambda s: s["status"] == "DELIVERED")
    await till.until(refunded, lambda s: [r["status"] for r in s["refunds"]] == ["SUCCEEDED"], 30)

    wechat = (await _reconcile(till, "WECHAT_PAY"))["data"]["reconcilePayments"]
    alipay = (await _reconcile(till, "ALIPAY"))["data"]["reconcilePayments"]

    assert wechat == {"userErrors": [], "report": {
        "provider": "WECHAT_PAY", "date": _today(), "records": 3, "matched": 3, "missingOnTheirSide": 0,
        "missingOnOurSide": 0, "amountMismatches": 0, "statusMismatches": 0, "items": []}}
    assert (alipay["report"]["records"], alipay["report"]["matched"], alipay["report"]["items"]) == (1, 1, [])


async def test_a_payment_whose_notifications_were_all_lost_shows_as_missing_on_our_side(till: Till) -> None:
    await till.http.post("/demo-payments/wechatpay/control", json={"lose_first": 100, "schedule": []})
    try:
        order = await till.place(channel="mini")
        await _pay_wechat(till, order)
        await till.settle()
    finally:
        await till.http.post("/demo-payments/wechatpay/control", json={"lose_first": 0, "schedule": [1, 2, 4]})

    report = (await _reconcile(till, "WECHAT_PAY"))["data"]["reconcilePayments"]["report"]

    assert report["missingOnOurSide"] == 1 and report["amountMismatches"] == report["statusMismatches"] == 0
    assert report["items"] == [{"kind": "MISSING_ON_OUR_SIDE", "reference": order["number"], "ourAmount": None,
                                "theirAmount": {"amount": "9.90"}, "ourStatus": None, "theirStatus": "PAID"}]


async def test_a_day_without_payments_reconciles_empty_and_only_operators_may_ask(till: Till) -> None:
    empty = (await _reconcile(till, "ALIPAY", "2020-01-01"))["data"]["reconcilePayments"]["report"]
    stranger = await _reconcile(till, "ALIPAY", key=till.keys.taobao)
    assert (empty["records"], empty["matched"], empty["items"]) == (0, 0, [])
    assert stranger["data"] is None and stranger["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_the_statement_formats_read_back_what_the_providers_write() -> None:
    wechat = statements.write_wechat_bill([
        {"交易状态": "SUCCESS", "商户订单号": "QY1", "微信订单号": "4200", "应结订单金额": "19.80"},
        {"交易状态": "REFUND", "商户退款单号": "QY1R7", "微信订单号": "4200", "应结订单金额": "19.80", "退款金额": "9.90",
         "退款状态": "SUCCESS"},
    ])
    alipay = statements.write_alipay_bill("2088", "2026-12-06", [
        {"业务类型": "交易", "商户订单号": "QY2", "支付宝交易号": "2026", "订单金额（元）": "0.01", "商家实收（元）": "0.01"},
        {"业务类型": "退款", "商户订单号": "QY2", "支付宝交易号": "2026", "订单金额（元）": "0.01", "商家实收（元）": "-0.01",
         "退款批次号/请求号": "QY2R8"},
    ])
    assert "`19.80" in wechat and wechat.splitlines()[-2].startswith("总交易单数")
    assert statements.read_wechat_bill(wechat) == [StatementLine("QY1", "PAYMENT", 1980, "PAID", "4200"),
                                                   StatementLine("QY1R7", "REFUND", 990, "REFUNDED", "4200")]
    assert statements.read_alipay_bill(alipay) == [StatementLine("QY2", "PAYMENT", 1, "PAID", "2026"),
                                                   StatementLine("QY2R8", "REFUND", 1, "REFUNDED", "2026")]
