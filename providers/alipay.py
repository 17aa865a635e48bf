"""Alipay (open platform, RSA2), the merchant's side: page and WAP payment URLs, the
mini-program's trade create, queries, refunds, and the asynchronous notifications.

Written on `cryptography` and httpx rather than `python-alipay-sdk` or Alipay's own
`alipay-sdk-python`: both call the gateway with blocking clients (urlopen, requests), which
would stall the event loop, and bring pycryptodome for the RSA that `cryptography` already
does here. The protocol is a few pure functions (providers/alipay_wire.py), shared with the
simulator.

Alipay has no separate refund notification of its own kind: alipay.trade.refund answers at
once (fund_change "Y": the money went back), and the trade's next notification carries
`out_biz_no` (our refund number) and the trade's refunded total in `refund_fee`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import orjson

from providers import alipay_wire as wire
from providers import statements
from providers.base import (
    Account,
    Checkout,
    Method,
    NotificationRejected,
    PaymentNotice,
    Provider,
    ProviderError,
    RefundNotice,
    RefundOrder,
    RefundState,
    Reply,
    Started,
    StatementLine,
    TradeState,
)

log = logging.getLogger("quanyi.payments.alipay")

GATEWAY = "https://openapi.alipay.com/gateway.do"
_PAID = {"TRADE_SUCCESS", "TRADE_FINISHED"}
_PRODUCTS = {Method.PAGE: ("alipay.trade.page.pay", "FAST_INSTANT_TRADE_PAY"),
             Method.WAP: ("alipay.trade.wap.pay", "QUICK_WAP_WAY")}


class Alipay:
    """The PaymentProvider for one Alipay app."""

    def __init__(self, account: Account, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout_seconds: float = 10.0) -> None:
        self.account = account
        self._client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout_seconds))

    def __repr__(self) -> str:
        return f"Alipay(app_id={self.account.app_id!r})"

    def _signed(self, method: str, biz: dict[str, Any], **extra: str) -> dict[str, str]:
        params = {
            "app_id": self.account.app_id, "method": method, "format": "JSON", "charset": "utf-8",
            "sign_type": "RSA2", "timestamp": wire.timestamp(datetime.now(UTC)), "version": "1.0",
            "biz_content": orjson.dumps(biz).decode(), **{k: v for k, v in extra.items() if v},
        }
        params["sign"] = wire.sign(self.account.private_key, params)
        return params

    async def _call(self, method: str, biz: dict[str, Any], **extra: str) -> dict[str, Any]:
        params = self._signed(method, biz, **extra)
        try:
            answer = await self._client.post(self.account.base_url, data=params)
        except httpx.HTTPError as error:
            raise ProviderError(f"Alipay did not answer ({type(error).__name__})") from None
        if answer.status_code != 200:
            raise ProviderError(f"Alipay answered {answer.status_code}")
        key = method.replace(".", "_") + "_response"
        text = answer.text
        signed = wire.response_text(text, key)
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise ProviderError("Alipay's answer is not JSON") from None
        if signed is None or not isinstance(data, dict) or not wire.keys.verify(
                self.account.provider_public_key, signed.encode(), str(data.get("sign", ""))):
            raise ProviderError("Alipay's answer is not signed by it")
        body = data.get(key)
        if not isinstance(body, dict):
            raise ProviderError(f"Alipay's answer has no {key}")
        return body

    async def create(self, checkout: Checkout) -> Started:
        biz: dict[str, Any] = {"out_trade_no": checkout.order_number, "total_amount": wire.yuan(checkout.amount_fen),
                               "subject": checkout.description[:256]}
        if checkout.expires_at is not None:
            biz["time_expire"] = wire.timestamp(checkout.expires_at)
        if checkout.method is Method.MINI_PROGRAM:
            biz.update(product_code="JSAPI_PAY", buyer_open_id=checkout.payer or "")
            answer = await self._call("alipay.trade.create", biz, notify_url=checkout.notify_url)
            if answer.get("code") != "10000" or not isinstance(answer.get("trade_no"), str):
                raise _refused(answer)
            return Started({"tradeNO": answer["trade_no"]}, answer["trade_no"])
        return Started(self.client_params(checkout, ""), None)

    def client_params(self, checkout: Checkout, handle: str) -> dict[str, Any]:
        if checkout.method is Method.MINI_PROGRAM:
            return {"tradeNO": handle}  # my.tradePay({ tradeNO })
        method, product = _PRODUCTS[checkout.method]
        biz: dict[str, Any] = {"out_trade_no": checkout.order_number, "total_amount": wire.yuan(checkout.amount_fen),
                               "subject": checkout.description[:256], "product_code": product}
        if checkout.expires_at is not None:
            biz["time_expire"] = wire.timestamp(checkout.expires_at)
        params = self._signed(method, biz, notify_url=checkout.notify_url, return_url=checkout.return_url or "")
        # The buyer's browser is sent to the gateway with the signed request (GET).
        return {"url": f"{self.account.base_url}?{urlencode(params)}"}

    def verify_notification(self, headers: Mapping[str, str], body: bytes, now: datetime) -> PaymentNotice | RefundNotice:
        try:
            form = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise NotificationRejected("the notification is not a form") from None
        if form.get("sign_type", "RSA2") != "RSA2":
            raise NotificationRejected("only RSA2 signatures are accepted")
        if not wire.verify_notification(self.account.provider_public_key, form):
            raise NotificationRejected("the signature does not match")
        out_trade_no, trade_no, app_id = form.get("out_trade_no"), form.get("trade_no"), form.get("app_id")
        total, status = wire.fen(form.get("total_amount")), form.get("trade_status", "")
        if not out_trade_no or not trade_no or not app_id or total is None:
            raise NotificationRejected("the notification lacks its numbers, app id or amount")
        if form.get("out_biz_no") and form.get("refund_fee"):
            refunded = wire.fen(form.get("refund_fee"))
            if refunded is None:
                raise NotificationRejected("refund_fee is not an amount")
            return RefundNotice(Provider.ALIPAY, RefundState.SUCCEEDED, form["out_biz_no"], out_trade_no, refunded,
                                app_id)
        state = TradeState.PAID if status in _PAID else TradeState.NOT_PAID
        return PaymentNotice(Provider.ALIPAY, state, out_trade_no, trade_no, total, "CNY", app_id, app_id,
                             _paid_at(form.get("gmt_payment")))

    async def query(self, order_number: str) -> PaymentNotice | None:
        answer = await self._call("alipay.trade.query", {"out_trade_no": order_number})
        if answer.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            return None
        if answer.get("code") != "10000":
            raise _refused(answer)
        total = wire.fen(answer.get("total_amount"))
        if total is None:
            raise ProviderError("Alipay's answer to a query has no amount")
        state = TradeState.PAID if answer.get("trade_status") in _PAID else TradeState.NOT_PAID
        return PaymentNotice(Provider.ALIPAY, state, order_number, str(answer.get("trade_no") or "-"), total, "CNY",
                             self.account.app_id, self.account.app_id, None)

    async def refund(self, refund: RefundOrder) -> RefundState:
        answer = await self._call("alipay.trade.refund", {
            "trade_no": refund.transaction_id, "out_trade_no": refund.order_number,
            "refund_amount": wire.yuan(refund.amount_fen), "out_request_no": refund.refund_number,
            "refund_reason": refund.reason[:256],
        })
        if answer.get("code") != "10000":
            raise _refused(answer)
        # "Y": the money moved now; otherwise it is under way and a query or notification tells.
        return RefundState.SUCCEEDED if answer.get("fund_change") == "Y" else RefundState.PROCESSING

    async def refund_state(self, order_number: str, refund_number: str) -> RefundState | None:
        answer = await self._call("alipay.trade.fastpay.refund.query",
                                  {"out_trade_no": order_number, "out_request_no": refund_number})
        if answer.get("code") != "10000":
            raise _refused(answer)
        # Alipay answers an unknown refund with success and no refund_status.
        if answer.get("refund_status") == "REFUND_SUCCESS":
            return RefundState.SUCCEEDED
        return RefundState.PROCESSING if answer.get("out_request_no") else None

    async def statement(self, day: date) -> list[StatementLine]:
        answer = await self._call("alipay.data.dataservice.bill.downloadurl.query",
                                  {"bill_type": "trade", "bill_date": day.isoformat()})
        if answer.get("sub_code") == "isp.bill_not_exist":
            return []
        url = answer.get("bill_download_url")
        if answer.get("code") != "10000" or not isinstance(url, str):
            raise _refused(answer)
        try:
            archive = await self._client.get(url)
        except httpx.HTTPError as error:
            raise ProviderError(f"Alipay's bill did not download ({type(error).__name__})") from None
        if archive.status_code != 200:
            raise ProviderError(f"Alipay's bill answered {archive.status_code}")
        return statements.read_alipay_bill(archive.content)

    def reply(self, handled: bool, message: str = "", status: int = 400) -> Reply:
        # Alipay reads the text: `success` stops its retries, anything else asks for them.
        return Reply(200, b"success" if handled else b"fail", "text/plain")

    async def close(self) -> None:
        await self._client.aclose()


def _paid_at(value: str | None) -> datetime | None:
    try:
        return datetime.strptime(value or "", "%Y-%m-%d %H:%M:%S").replace(tzinfo=wire.CHINA).astimezone(UTC)
    except ValueError:
        return None


def _refused(answer: dict[str, Any]) -> ProviderError:
    code = str(answer.get("sub_code") or answer.get("code") or "UNKNOWN")
    message = str(answer.get("sub_msg") or answer.get("msg") or "")[:200]
    retryable = code in {"20000", "ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR"}
    return ProviderError(f"Alipay refused: {code} {message}".strip(), code=code, retryable=retryable)
