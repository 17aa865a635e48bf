"""Notifications that must change nothing: forged, stale, tampered, replayed, another app's,
a wrong amount or currency. Forgeries are refused before anything is written (and logged);
genuine notifications that cannot be applied are refused and recorded once."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select

from models import PaymentNotification, PaymentRefusal
from providers import alipay_wire, keys
from providers import wechatpay_wire as wire
from tests.payments.conftest import Till

OTHER_PRIVATE, _ = keys.new_pair()


def _wechat_sim(till: Till) -> Any:
    return till.providers.wechatpay.state.sim


def _wechat_notice(till: Till, transaction: dict[str, Any], *, key: str | None = None, at: float | None = None,
                   body: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    sim = _wechat_sim(till)
    body = body or orjson.dumps({
        "id": "EV-0001", "create_time": "2026-12-06T10:00:00+08:00", "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
        "resource": wire.encrypt_resource(sim.merchant.api_v3_key, orjson.dumps(transaction), "transaction",
                                          "transaction"),
    })
    headers = wire.signed_headers(key or sim.private_key, sim.key_id, body, at or time.time())
    return body, {**headers, "Content-Type": "application/json"}


async def _started(till: Till, channel: str = "mini") -> tuple[dict[str, Any], dict[str, Any]]:
    """An order whose WeChat Pay payment was started, and the transaction WeChat Pay would report."""
    order = await till.place(channel=channel)
    created = await till.create_payment(order, "WECHAT_PAY", "JSAPI", open_id="o-buyer")
    assert created["userErrors"] == []
    trade = _wechat_sim(till).trades[order["number"]]
    transaction = {**_wechat_sim(till).transaction(trade), "trade_state": "SUCCESS",
                   "transaction_id": f"4200000000{order['number'][-10:]}", "success_time": "2026-12-06T10:00:00+08:00"}
    return order, transaction


async def _counts(till: Till, order: dict[str, Any]) -> tuple[str, int, list[str]]:
    seen = await till.order(order)
    async with till.db.sessions() as session:
        applied = await session.scalar(select(func.count()).select_from(PaymentNotification)) or 0
        refusals = list(await session.scalars(select(PaymentRefusal.code)
                                               .where(PaymentRefusal.order_number == order["number"])))
    return seen["status"], applied, refusals


async def test_a_forged_wechat_pay_notification_changes_nothing(till: Till, caplog: pytest.LogCaptureFixture) -> None:
    order, transaction = await _started(till)
    before = await _counts(till, order)
    body, headers = _wechat_notice(till, transaction, key=OTHER_PRIVATE)

    answer = await till.http.post("/webhooks/wechatpay", content=body, headers=headers)

    assert (answer.status_code, answer.json()) == (401, {"code": "FAIL", "message": "the signature does not match"})
    assert await _counts(till, order) == before == ("PENDING_PAYMENT", before[1], [])
    assert "wechat_pay notification refused: the signature does not match" in caplog.text


async def test_a_stale_or_tampered_wechat_pay_notification_changes_nothing(till: Till) -> None:
    order, transaction = await _started(till)
    before = await _counts(till, order)
    stale_body, stale = _wechat_notice(till, transaction, at=time.time() - 301)
    fresh_body, fresh = _wechat_notice(till, transaction)
    envelope = orjson.loads(fresh_body)
    envelope["resource"]["ciphertext"] = envelope["resource"]["ciphertext"][::-1]
    tampered_body, tampered = _wechat_notice(till, transaction, body=orjson.dumps(envelope))
    resigned_elsewhere = {**fresh, "Wechatpay-Serial": "PUB_KEY_ID_SOMEONE_ELSE"}

    answers = [await till.http.post("/webhooks/wechatpay", content=body, headers=headers) for body, headers in
               ((stale_body, stale), (tampered_body, tampered), (fresh_body, resigned_elsewhere),
                (fresh_body + b" ", fresh))]

    assert [(a.status_code, a.json()["message"]) for a in answers] == [
        (401, "the timestamp is outside the accepted window"),
        (401, "the resource does not decrypt under the API v3 key"),
        (401, "signed with a key this merchant does not know"),
        (401, "the signature does not match"),
    ]
    assert await _counts(till, order) == before


async def test_a_replayed_wechat_pay_notification_pays_once(till: Till) -> None:
    order, transaction = await _started(till)
    body, headers = _wechat_notice(till, transaction)
    first = await till.http.post("/webhooks/wechatpay", content=body, headers=headers)
    delivered = await till.until(order, lambda seen: seen["status"] == "DELIVERED")

    replays = [await till.http.post("/webhooks/wechatpay", content=body, headers=headers) for _ in range(3)]

    assert [first.status_code, *(r.status_code for r in replays)] == [204, 204, 204, 204]
    assert await till.order(order) == delivered
    assert [e["toStatus"] for e in delivered["events"]].count("PAID") == 1


async def test_a_wrong_amount_currency_or_app_is_refused_and_recorded_once(till: Till) -> None:
    order, transaction = await _started(till)
    _, applied, _ = await _counts(till, order)
    wrong = [
        {**transaction, "amount": {**transaction["amount"], "total": transaction["amount"]["total"] - 1}},
        {**transaction, "amount": {**transaction["amount"], "currency": "USD"}},
        {**transaction, "appid": "wxd0c0h5000000002"},
        {**transaction, "out_trade_no": "QY-NO-SUCH-ORDER"},
    ]
    answers = []
    for each in wrong + wrong:  # the provider retries each one
        body, headers = _wechat_notice(till, each)
        answers.append((await till.http.post("/webhooks/wechatpay", content=body, headers=headers)).status_code)

    assert answers == [422, 422, 403, 404] * 2
    assert await _counts(till, order) == ("PENDING_PAYMENT", applied, ["AMOUNT_MISMATCH", "WRONG_ACCOUNT"])
    async with till.db.sessions() as session:
        unknown = await session.scalar(select(PaymentRefusal.code).where(PaymentRefusal.order_number == "QY-NO-SUCH-ORDER"))
    assert unknown == "UNKNOWN_ORDER"


async def test_a_provider_reporting_a_wrong_amount_is_refused_until_it_stops(till: Till) -> None:
    order = await till.place(channel="web")
    created = await till.create_payment(order, "WECHAT_PAY", "NATIVE")
    await till.http.post("/demo-payments/wechatpay/control", json={"amount_offset_fen": 1, "schedule": [0.05, 0.05]})
    try:
        await till.http.post("/demo-payments/wechatpay/sim/scan", json={"code_url": created["payment"]["clientParams"]["codeUrl"]})
        await till.settle()
    finally:
        await till.http.post("/demo-payments/wechatpay/control", json={"amount_offset_fen": 0, "schedule": [1, 2, 4]})
    deliveries = (await till.http.get("/demo-payments/wechatpay/control/notifications")).json()
    mine = [d for d in deliveries if d["out_trade_no"] == order["number"]]
    assert [(d["attempts"], d["accepted"], d["answers"]) for d in mine] == [(3, 0, [422, 422, 422])]
    status, _, refusals = await _counts(till, order)
    assert (status, refusals) == ("PENDING_PAYMENT", ["AMOUNT_MISMATCH"])


async def test_alipay_notifications_forged_or_for_a_wrong_amount_are_answered_fail(till: Till) -> None:
    order = await till.place(channel="mini")
    created = await till.create_payment(order, "ALIPAY", "MINI_PROGRAM", open_id="2088000000000002")
    sim = till.providers.alipay.state.sim
    form = {"notify_time": "2026-12-06 10:00:00", "notify_type": "trade_status_sync", "notify_id": "n1",
            "app_id": sim.app_id, "charset": "utf-8", "version": "1.0", "trade_status": "TRADE_SUCCESS",
            "trade_no": created["payment"]["clientParams"]["tradeNO"], "out_trade_no": order["number"],
            "total_amount": "9.90"}

    def signed(fields: dict[str, str], key: str) -> dict[str, str]:
        return {**fields, "sign": keys.sign(key, alipay_wire.content(fields, exclude=("sign", "sign_type"))),
                "sign_type": "RSA2"}

    forged = await till.http.post("/webhooks/alipay", data=signed(form, OTHER_PRIVATE))
    short = await till.http.post("/webhooks/alipay", data=signed({**form, "total_amount": "9.89"}, sim.private_key))
    spelled = await till.http.post("/webhooks/alipay", data=signed({**form, "total_amount": "9.9000"}, sim.private_key))
    sign_type = await till.http.post("/webhooks/alipay", data={**signed(form, sim.private_key), "sign_type": "RSA"})

    assert [a.text for a in (forged, short, spelled, sign_type)] == ["fail", "fail", "fail", "fail"]
    status, _, refusals = await _counts(till, order)
    assert (status, refusals) == ("PENDING_PAYMENT", ["AMOUNT_MISMATCH"])

    genuine = await till.http.post("/webhooks/alipay", data=signed(form, sim.private_key))
    assert genuine.text == "success"
    assert (await till.until(order, lambda seen: seen["status"] == "DELIVERED"))["status"] == "DELIVERED"


async def test_notifications_are_bounded_in_size(till: Till) -> None:
    answer = await till.http.post("/webhooks/wechatpay", content=b"x" * (65 * 1024))
    assert (answer.status_code, answer.json()["code"]) == (413, "FAIL")
