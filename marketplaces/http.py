"""A marketplace reached through its open platform (the shape of Taobao's TOP and JD's).

Every call is one signed form POST to the platform's router (marketplaces/signing.py). An
answer we cannot use (a timeout, a connection refused, a 5xx, a body that is not the
protocol's) is MarketplaceUnavailable: the caller tries again later. An `error_response` is
the platform saying no (MarketplaceRefused), except for a delivery it already has, which
counts as delivered: the platform keeps one delivery per trade, so a report sent twice is
recorded once there and once here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from marketplaces import signing, wire
from marketplaces.base import (
    PAID,
    MarketplaceRefused,
    MarketplaceUnavailable,
    Push,
    RefundDecision,
    RefundPage,
    Shipment,
    Shipped,
    SignatureError,
    Trade,
    TradePage,
)

log = logging.getLogger("quanyi.marketplaces")

KIND = "open-platform"
ROUTER = "/router/rest"


def _now() -> datetime:
    return datetime.now(UTC)


class OpenPlatformAdapter:
    """The MarketplaceAdapter for an open platform: app key and secret, signed calls."""

    code = KIND

    def __init__(
        self, base_url: str, app_key: str, app_secret: str, *, timeout_seconds: float = 10.0,
        client: httpx.AsyncClient | None = None, clock: Callable[[], datetime] = _now,
        tolerance_seconds: int = signing.TOLERANCE_SECONDS,
    ) -> None:
        signing.digest(app_secret, {})  # an empty secret is refused here, not on first use
        self._url = base_url.rstrip("/") + ROUTER
        self._app_key, self._secret = app_key, app_secret
        self._timeout = httpx.Timeout(timeout_seconds)
        self._clock, self._tolerance = clock, tolerance_seconds
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=self._timeout)

    def __repr__(self) -> str:  # no secret in a repr that reaches a log
        return f"OpenPlatformAdapter({self._url!r}, app_key={self._app_key!r})"

    async def _call(self, method: str, params: Mapping[str, str]) -> dict[str, Any]:
        system = {"method": method, "app_key": self._app_key, "timestamp": signing.timestamp(self._clock()),
                  "format": "json", "v": "2.0"}
        form = signing.signed(self._secret, {**system, **params})
        try:
            response = await self._client.post(self._url, data=form, timeout=self._timeout)
        except httpx.TimeoutException:
            raise MarketplaceUnavailable(f"{method}: no answer in time") from None
        except httpx.RequestError as error:
            raise MarketplaceUnavailable(f"{method}: {type(error).__name__}") from None
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise MarketplaceUnavailable(f"{method}: HTTP {response.status_code}")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise MarketplaceUnavailable(f"{method}: HTTP {response.status_code}, not JSON") from None
        if not isinstance(body, dict):
            raise MarketplaceUnavailable(f"{method}: not the protocol's answer")
        error = body.get("error_response")
        if isinstance(error, dict):
            code = str(error.get("sub_code") or error.get("code") or "error")
            raise MarketplaceRefused(code, str(error.get("sub_msg") or error.get("msg") or "")[:300])
        answer = body.get(wire.response_name(method))
        if not isinstance(answer, dict):
            raise MarketplaceUnavailable(f"{method}: HTTP {response.status_code} without {wire.response_name(method)}")
        return answer

    async def trades_since(self, start: datetime, end: datetime, page: int, page_size: int) -> TradePage:
        answer = await self._call(wire.TRADES, {
            "start_modified": signing.timestamp(start), "end_modified": signing.timestamp(end), "status": PAID,
            "page_no": str(page), "page_size": str(page_size), "use_has_next": "true",
            "fields": "tid,status,modified,pay_time,payment,receiver_mobile,recharge_account,orders",
        })
        found = answer.get("trades")
        rows = found.get("trade", []) if isinstance(found, dict) else []
        try:
            trades = [wire.parse_trade(row) for row in rows]
        except wire.WireError as error:
            raise MarketplaceUnavailable(f"{wire.TRADES}: {error}") from None
        return TradePage(trades, bool(answer.get("has_next")))

    async def trade(self, tid: str) -> Trade:
        answer = await self._call(wire.TRADE, {"tid": tid, "fields": "tid,status,modified,pay_time,payment,receiver_mobile,recharge_account,orders"})
        try:
            return wire.parse_trade(answer.get("trade"))
        except wire.WireError as error:
            raise MarketplaceUnavailable(f"{wire.TRADE}: {error}") from None

    async def ship(self, shipment: Shipment) -> Shipped:
        # A bundle of codes and top-ups is one MIXED delivery carrying both.
        params: dict[str, str] = {"delivery_type": wire.delivery_type(bool(shipment.codes), bool(shipment.topups))}
        if shipment.codes:
            params["codes"] = orjson.dumps(
                [{"number": code.number, "secret": code.secret} for code in shipment.codes]).decode()
        if shipment.topups or not shipment.codes:
            params["recharge_result"] = orjson.dumps(
                [{"account": t.account, "status": "SUCCESS", "reference": t.reference} for t in shipment.topups]).decode()
        try:
            answer = await self._call(wire.SHIP, {"tid": shipment.tid, **params})
        except MarketplaceRefused as refused:
            if refused.code == wire.ALREADY_DELIVERED:
                return Shipped(True, already=True, message=refused.message)
            raise
        shipping = answer.get("shipping")
        if not isinstance(shipping, dict) or shipping.get("is_success") is not True:
            raise MarketplaceUnavailable(f"{wire.SHIP}: no is_success in the answer")
        return Shipped(True)

    async def refunds_since(self, start: datetime, end: datetime, page: int, page_size: int) -> RefundPage:
        answer = await self._call(wire.REFUNDS, {
            "start_modified": signing.timestamp(start), "end_modified": signing.timestamp(end),
            "page_no": str(page), "page_size": str(page_size), "use_has_next": "true",
        })
        found = answer.get("refunds")
        rows = found.get("refund", []) if isinstance(found, dict) else []
        try:
            refunds = [wire.parse_refund(row) for row in rows]
        except wire.WireError as error:
            raise MarketplaceUnavailable(f"{wire.REFUNDS}: {error}") from None
        return RefundPage(refunds, bool(answer.get("has_next")))

    async def decide_refund(self, decision: RefundDecision) -> None:
        if decision.agree:
            method, params = wire.AGREE, {"refund_id": decision.refund_id, "refund_fee": str(decision.amount.amount)}
        else:
            method, params = wire.REFUSE, {"refund_id": decision.refund_id, "refuse_message": decision.reason}
        try:
            answer = await self._call(method, {"tid": decision.tid, **params})
        except MarketplaceRefused as refused:
            if refused.code == wire.ALREADY_DECIDED:
                return  # told before (a report sent twice): the platform keeps one decision
            raise
        if answer.get("is_success") is not True:
            raise MarketplaceUnavailable(f"{method}: no is_success in the answer")

    def verify_push(self, params: Mapping[str, str], now: datetime) -> None:
        signing.verify(self._secret, self._app_key, params, now, tolerance_seconds=self._tolerance)

    def parse_push(self, params: Mapping[str, str]) -> Push:
        try:
            content = orjson.loads(params.get("content", ""))
            topic = params.get("topic")
            if topic == wire.TRADE_TOPIC:
                return Push(trade=wire.parse_trade(content))
            if topic == wire.REFUND_TOPIC:
                return Push(refund=wire.parse_refund(content))
        except (orjson.JSONDecodeError, wire.WireError) as error:
            raise SignatureError(f"a malformed push: {error}") from None
        raise SignatureError(f"a push of an unknown topic {params.get('topic')!r}")

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()
