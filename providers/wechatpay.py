"""WeChat Pay API v3, the merchant's side: JSAPI (mini-program and in-WeChat H5), H5 and
Native payments, queries, refunds, and the notifications of both.

Written on `cryptography` and httpx rather than the `wechatpayv3` package: that package
calls WeChat Pay with the blocking `requests` client, which would stall the gateway's event
loop for the length of every call, and its gateway address is fixed, so the simulator
(and WeChat Pay's own sandbox hosts) cannot be reached through it. The protocol itself is
a few pure functions (providers/wechatpay_wire.py), shared with the simulator. Answers are
checked like notifications: signed by the platform key, recently.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from providers import statements
from providers import wechatpay_wire as wire
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

log = logging.getLogger("quanyi.payments.wechatpay")

BASE_URL = "https://api.mch.weixin.qq.com"
CHINA = timezone(timedelta(hours=8))
_PATHS = {
    Method.JSAPI: "/v3/pay/transactions/jsapi",
    Method.MINI_PROGRAM: "/v3/pay/transactions/jsapi",
    Method.H5: "/v3/pay/transactions/h5",
    Method.NATIVE: "/v3/pay/transactions/native",
}
_HANDLE = {Method.JSAPI: "prepay_id", Method.MINI_PROGRAM: "prepay_id", Method.H5: "h5_url", Method.NATIVE: "code_url"}
_REFUND_STATES = {"SUCCESS": RefundState.SUCCEEDED, "PROCESSING": RefundState.PROCESSING,
                  "CLOSED": RefundState.FAILED, "ABNORMAL": RefundState.FAILED}
_REFUND_EVENTS = {"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"}
_TRADE_STATES = {"SUCCESS": TradeState.PAID, "REFUND": TradeState.REFUNDED}


class WechatPay:
    """The PaymentProvider for one WeChat Pay merchant and app id."""

    def __init__(self, account: Account, *, transport: httpx.AsyncBaseTransport | None = None,
                 timeout_seconds: float = 10.0) -> None:
        if len(account.api_key.encode()) != 32:
            raise ValueError("the WeChat Pay API v3 key is 32 bytes")
        self.account = account
        self._client = httpx.AsyncClient(base_url=account.base_url.rstrip("/"), transport=transport,
                                         timeout=httpx.Timeout(timeout_seconds))

    def __repr__(self) -> str:
        return f"WechatPay(mchid={self.account.merchant_id!r}, appid={self.account.app_id!r})"

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        body = orjson.dumps(payload).decode() if payload is not None else ""
        account = self.account
        authorization = wire.authorization(account.merchant_id, account.key_serial, account.private_key, method,
                                           path, body, timestamp=str(int(time.time())), nonce_str=wire.nonce())
        headers = {"Authorization": authorization, "Accept": "application/json",
                   "Wechatpay-Serial": account.provider_key_id}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            answer = await self._client.request(method, path, content=body.encode() or None, headers=headers)
        except httpx.HTTPError as error:
            raise ProviderError(f"WeChat Pay did not answer ({type(error).__name__})") from None
        if answer.status_code >= 500:
            raise ProviderError(f"WeChat Pay answered {answer.status_code}")
        try:
            wire.verify_signed(answer.headers, answer.content, account.provider_public_key,
                               account.provider_key_id, time.time())
        except NotificationRejected as rejected:
            raise ProviderError(f"WeChat Pay's answer is not signed by it: {rejected}") from None
        data = orjson.loads(answer.content) if answer.content else {}
        return answer.status_code, data if isinstance(data, dict) else {}

    async def create(self, checkout: Checkout) -> Started:
        account = self.account
        payload: dict[str, Any] = {
            "appid": account.app_id, "mchid": account.merchant_id, "description": checkout.description[:127],
            "out_trade_no": checkout.order_number, "notify_url": checkout.notify_url,
            "amount": {"total": checkout.amount_fen, "currency": checkout.currency},
        }
        if checkout.expires_at is not None:
            payload["time_expire"] = checkout.expires_at.astimezone(CHINA).isoformat(timespec="seconds")
        if checkout.method in (Method.JSAPI, Method.MINI_PROGRAM):
            payload["payer"] = {"openid": checkout.payer}
        if checkout.method is Method.H5:
            payload["scene_info"] = {"payer_client_ip": checkout.client_ip or "127.0.0.1", "h5_info": {"type": "Wap"}}
        status, data = await self._call("POST", _PATHS[checkout.method], payload)
        if status != 200:
            raise _refused(status, data)
        handle = data.get(_HANDLE[checkout.method])
        if not isinstance(handle, str) or not handle:
            raise ProviderError(f"WeChat Pay's answer has no {_HANDLE[checkout.method]}")
        return Started(self.client_params(checkout, handle), handle)

    def client_params(self, checkout: Checkout, handle: str) -> dict[str, Any]:
        if checkout.method is Method.H5:
            return {"h5Url": handle}
        if checkout.method is Method.NATIVE:
            return {"codeUrl": handle}
        # wx.requestPayment / WeixinJSBridge: signed afresh each time it is asked for.
        timestamp, nonce_str, package = str(int(time.time())), wire.nonce(), f"prepay_id={handle}"
        return {"appId": self.account.app_id, "timeStamp": timestamp, "nonceStr": nonce_str, "package": package,
                "signType": "RSA",
                "paySign": wire.pay_sign(self.account.private_key, self.account.app_id, timestamp, nonce_str, package)}

    def _resource(self, headers: Mapping[str, str], body: bytes, now: datetime) -> tuple[str, dict[str, Any]]:
        account = self.account
        wire.verify_signed(headers, body, account.provider_public_key, account.provider_key_id, now.timestamp())
        try:
            envelope = orjson.loads(body)
            plain = orjson.loads(wire.decrypt_resource(account.api_key, envelope.get("resource")))
        except (orjson.JSONDecodeError, AttributeError):
            raise NotificationRejected("the notification is not WeChat Pay's JSON") from None
        event = envelope.get("event_type")
        if not isinstance(event, str) or not isinstance(plain, dict):
            raise NotificationRejected("the notification has no event_type or resource")
        return event, plain

    def verify_notification(self, headers: Mapping[str, str], body: bytes, now: datetime) -> PaymentNotice | RefundNotice:
        event, resource = self._resource(headers, body, now)
        if event in _REFUND_EVENTS:
            return self._refund_notice(resource)
        if not event.startswith("TRANSACTION."):
            raise NotificationRejected(f"{event} is not a payment or refund notification")
        return self._notice(resource)

    def _notice(self, transaction: dict[str, Any]) -> PaymentNotice:
        amount = transaction.get("amount")
        total = amount.get("total") if isinstance(amount, dict) else None
        currency = amount.get("currency", "CNY") if isinstance(amount, dict) else None
        fields = [transaction.get(name) for name in ("out_trade_no", "transaction_id", "appid", "mchid", "trade_state")]
        if not all(isinstance(value, str) and value for value in fields) or not _fen(total) or not isinstance(currency, str):
            raise NotificationRejected("the transaction lacks its numbers, ids, state or amount")
        out_trade_no, transaction_id, app_id, mchid, trade_state = fields
        return PaymentNotice(
            Provider.WECHAT_PAY, _TRADE_STATES.get(trade_state, TradeState.NOT_PAID), out_trade_no,
            transaction_id, total, currency, app_id, mchid, _time(transaction.get("success_time")),
        )

    async def query(self, order_number: str) -> PaymentNotice | None:
        path = f"/v3/pay/transactions/out-trade-no/{quote(order_number, safe='')}?mchid={quote(self.account.merchant_id)}"
        status, data = await self._call("GET", path)
        if status == 404:
            return None
        if status != 200:
            raise _refused(status, data)
        if data.get("trade_state") != "SUCCESS" and "transaction_id" not in data:
            data = {**data, "transaction_id": "-"}  # an unpaid trade has no transaction id yet
        try:
            return self._notice(data)
        except NotificationRejected as error:
            raise ProviderError(f"WeChat Pay's answer to a query: {error}") from None

    async def refund(self, refund: RefundOrder) -> RefundState:
        payload = {
            "transaction_id": refund.transaction_id, "out_refund_no": refund.refund_number,
            "reason": refund.reason[:80], "notify_url": refund.notify_url,
            "amount": {"refund": refund.amount_fen, "total": refund.total_fen, "currency": refund.currency},
        }
        status, data = await self._call("POST", "/v3/refund/domestic/refunds", payload)
        if status != 200:
            raise _refused(status, data)
        state = _REFUND_STATES.get(str(data.get("status")))
        if state is None:
            raise ProviderError("WeChat Pay's refund answer has no status we know")
        return state

    def _refund_notice(self, refund: dict[str, Any]) -> RefundNotice:
        amount = refund.get("amount")
        fields = [refund.get(name) for name in ("out_refund_no", "out_trade_no", "mchid", "refund_status")]
        refunded = amount.get("refund") if isinstance(amount, dict) else None
        if not all(isinstance(value, str) and value for value in fields) or not _fen(refunded):
            raise NotificationRejected("the refund lacks its numbers, state or amount")
        refund_number, order_number, mchid, refund_status = fields
        state = _REFUND_STATES.get(refund_status, RefundState.FAILED)
        return RefundNotice(Provider.WECHAT_PAY, state, refund_number, order_number, refunded, mchid,
                            str(refund.get("refund_id") or ""))

    async def refund_state(self, order_number: str, refund_number: str) -> RefundState | None:
        status, data = await self._call("GET", f"/v3/refund/domestic/refunds/{quote(refund_number, safe='')}")
        if status == 404:
            return None
        if status != 200:
            raise _refused(status, data)
        return _REFUND_STATES.get(str(data.get("status")), RefundState.PROCESSING)

    async def statement(self, day: date) -> list[StatementLine]:
        status, data = await self._call("GET", f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL")
        if status == 400 and data.get("code") == "NO_STATEMENT_EXIST":
            return []
        if status != 200 or not isinstance(data.get("download_url"), str):
            raise _refused(status, data)
        # The file itself is not signed: the signed answer carries its SHA-1 instead.
        url = urlsplit(data["download_url"])
        path = (url.path + (f"?{url.query}" if url.query else "")).removeprefix(urlsplit(self.account.base_url).path)
        account = self.account
        authorization = wire.authorization(account.merchant_id, account.key_serial, account.private_key, "GET", path,
                                           "", timestamp=str(int(time.time())), nonce_str=wire.nonce())
        try:
            answer = await self._client.get(data["download_url"], headers={"Authorization": authorization})
        except httpx.HTTPError as error:
            raise ProviderError(f"WeChat Pay's bill did not download ({type(error).__name__})") from None
        if answer.status_code != 200 or hashlib.sha1(answer.content).hexdigest() != str(data.get("hash_value")).lower():
            raise ProviderError("WeChat Pay's bill did not download whole")
        return statements.read_wechat_bill(answer.content.decode("utf-8"))

    def reply(self, handled: bool, message: str = "", status: int = 400) -> Reply:
        if handled:
            return Reply(204, b"", "application/json")
        return Reply(status, orjson.dumps({"code": "FAIL", "message": message or "失败"}), "application/json")

    async def close(self) -> None:
        await self._client.aclose()


def _fen(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return None


def _refused(status: int, data: dict[str, Any]) -> ProviderError:
    code = str(data.get("code") or "HTTP_" + str(status))
    message = str(data.get("message") or "")[:200]
    # A 429, or a code WeChat Pay asks to retry, may go through later; a 4xx otherwise will not.
    retryable = status == 429 or code in {"SYSTEM_ERROR", "FREQUENCY_LIMITED", "NOT_ENOUGH", "USER_ACCOUNT_ABNORMAL"}
    return ProviderError(f"WeChat Pay refused: {code} {message}".strip(), code=code, retryable=retryable)
