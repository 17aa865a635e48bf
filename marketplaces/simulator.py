"""A simulated marketplace: the open platform of marketplaces/wire.py, with faults to order.

    POST /router/rest          the API, signed (app key, timestamp, HMAC-SHA256 over sorted params)
    GET  /control              the faults in force
    POST /control              change them: {"duplicate_rate": 0.3, "fail_pulls": 2}
    POST /control/trades       a buyer pays: {"outer_id": "QB-10", "quantity": 1, "price": "9.90",
                               "account": "...", "phone": "...", "push": false}
    POST /control/refunds      a buyer asks for a refund: {"tid": "...", "reason": "..."}, or withdraws
                               the one waiting for the seller: {"tid": "...", "withdraw": true}
    GET  /control/trades       every trade, with its status
    GET  /control/deliveries   every delivery recorded (codes masked) and how often it was reported
    GET  /control/refunds      every refund and the seller's decision on it, how often it was sent

A trade or refund is pushed to `push_url` (signed the same way) when that is set and the
control call asks for it. /control is unsigned: the simulator is a test and demo tool,
listening on localhost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.money import Money, MoneyError
from marketplaces import signing, wire
from marketplaces.base import DeliveredCode, SignatureError, TopUpResult
from marketplaces.sim_state import Faults, Shop

log = logging.getLogger("quanyi.marketplace_sim")

PAGE_SIZE_MAX = 100


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def _now() -> datetime:
    return datetime.now(UTC)


class Marketplace:
    def __init__(self, app_key: str, app_secret: str, faults: Faults, shop: Shop,
                 clock: Callable[[], datetime]) -> None:
        signing.digest(app_secret, {})  # an empty secret is refused at start-up
        self.app_key, self.app_secret = app_key, app_secret
        self.faults, self.shop, self.clock = faults, shop, clock
        self.client: httpx.AsyncClient | None = None
        self.calls: dict[str, int] = {}  # API calls received, by method (tests read it)

    def fails(self, count_name: str, rate: float) -> bool:
        """Whether this call fails: one of the next `count_name` calls, or by chance."""
        if getattr(self.faults, count_name) > 0:
            setattr(self.faults, count_name, getattr(self.faults, count_name) - 1)
            return True
        return self.shop.random.random() < rate

    async def failure(self, method: str) -> Response:
        if self.faults.failure == "timeout":
            await asyncio.sleep(self.faults.hang_ms / 1000)
            return _json(wire.error_json(7, "gateway timeout"), 504)
        return _json(wire.error_json(15, f"{method}: remote service error", "isp.remote-service-error"), 500)

    async def push(self, topic: str, content: dict[str, Any]) -> int | None:
        """Push a message to `push_url`, signed; its HTTP status, or None without an answer."""
        if not self.faults.push_url or self.client is None:
            return None
        params = signing.signed(self.app_secret, {
            "app_key": self.app_key, "timestamp": signing.timestamp(self.clock()), "topic": topic,
            "content": orjson.dumps(content).decode(),
        })
        try:
            return (await self.client.post(self.faults.push_url, data=params)).status_code
        except httpx.HTTPError as error:
            log.warning("push of %s to %s failed: %s", topic, self.faults.push_url, type(error).__name__)
            return None

    @contextlib.asynccontextmanager
    async def running(self, app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=10.0) as self.client:
            yield


def _sim(request: Request) -> Marketplace:
    return request.app.state.marketplace  # type: ignore[no-any-return]


def _window(params: dict[str, str]) -> tuple[datetime, datetime, int, int]:
    start = signing.parse_time(params.get("start_modified", ""))
    end = signing.parse_time(params.get("end_modified", ""))
    page = int(params.get("page_no") or "1")
    size = int(params.get("page_size") or "40")
    if end < start or (end - start).days >= 1 or page < 1 or not 1 <= size <= PAGE_SIZE_MAX:
        raise ValueError("start_modified to end_modified within a day, page_no from 1, page_size 1 to 100")
    return start, end, page, size


async def _api(request: Request) -> Response:
    sim = _sim(request)
    params = wire.form(await request.body())
    method = params.get("method", "")
    try:
        signing.verify(sim.app_secret, sim.app_key, params, sim.clock())
    except SignatureError as error:
        return _json(wire.error_json(25, "Invalid signature", "isv.invalid-signature", str(error)))
    if method not in wire.METHODS:
        return _json(wire.error_json(22, "Invalid method", "isv.invalid-method", method[:80]))
    sim.calls[method] = sim.calls.get(method, 0) + 1
    if sim.faults.latency_ms:
        await asyncio.sleep(sim.faults.latency_ms / 1000)
    try:
        if method == wire.TRADES:
            return await _trades(sim, params)
        if method == wire.REFUNDS:
            return await _refunds(sim, params)
        if method == wire.TRADE:
            return _trade(sim, params)
        if method in (wire.AGREE, wire.REFUSE):
            return await _decide(sim, method, params)
        return await _ship(sim, params)
    except (ValueError, wire.WireError) as error:  # JSONDecodeError is a ValueError
        return _json(wire.error_json(40, "Missing or invalid arguments", "isv.invalid-parameter", str(error)[:200]))


async def _trades(sim: Marketplace, params: dict[str, str]) -> Response:
    start, end, page, size = _window(params)
    if sim.fails("fail_pulls", sim.faults.pull_fail_rate):
        return await sim.failure(wire.TRADES)
    found = sim.shop.changed(start, end, params.get("status") or None)
    chunk = found[(page - 1) * size: page * size]
    shown = []
    for trade in chunk:
        shown.append(wire.trade_json(trade))
        if sim.shop.random.random() < sim.faults.duplicate_rate:
            shown.append(wire.trade_json(trade))  # the platforms' pages do repeat trades
    answer = {"trades": {"trade": shown}, "has_next": page * size < len(found), "total_results": len(found)}
    return _json({wire.response_name(wire.TRADES): answer})


async def _refunds(sim: Marketplace, params: dict[str, str]) -> Response:
    start, end, page, size = _window(params)
    if sim.fails("fail_pulls", sim.faults.pull_fail_rate):
        return await sim.failure(wire.REFUNDS)
    found = sim.shop.refunds_changed(start, end)
    chunk = [wire.refund_json(refund) for refund in found[(page - 1) * size: page * size]]
    answer = {"refunds": {"refund": chunk}, "has_next": page * size < len(found), "total_results": len(found)}
    return _json({wire.response_name(wire.REFUNDS): answer})


def _trade(sim: Marketplace, params: dict[str, str]) -> Response:
    trade = sim.shop.trades.get(params.get("tid", ""))
    if trade is None:
        return _json(wire.error_json(15, "Remote service error", "isv.trade-not-exist", "no such trade"))
    return _json({wire.response_name(wire.TRADE): {"trade": wire.trade_json(trade)}})


async def _ship(sim: Marketplace, params: dict[str, str]) -> Response:
    tid = params.get("tid", "")
    codes: list[DeliveredCode] = []
    topups: list[TopUpResult] = []
    kind = params.get("delivery_type")
    if kind not in (wire.CODES, wire.RECHARGE, wire.MIXED):
        raise ValueError("delivery_type is CODES, RECHARGE or MIXED")
    if kind in (wire.CODES, wire.MIXED):
        for item in orjson.loads(params.get("codes", "")):
            if not isinstance(item, dict) or not isinstance(item.get("secret"), str) or not item["secret"]:
                raise ValueError("codes is a list of {number, secret}")
            codes.append(DeliveredCode(item.get("number"), item["secret"]))
    if kind in (wire.RECHARGE, wire.MIXED):
        for item in orjson.loads(params.get("recharge_result", "")):
            if not isinstance(item, dict) or item.get("status") != "SUCCESS":
                raise ValueError("recharge_result is a list of {account, status: SUCCESS, reference}")
            topups.append(TopUpResult(str(item.get("account") or ""), str(item.get("reference") or "")))
    if wire.delivery_type(bool(codes), bool(topups)) != kind or not (codes or topups):
        raise ValueError("CODES carries codes, RECHARGE a recharge result, MIXED both")
    if sim.fails("fail_ships", sim.faults.ship_fail_rate):
        return await sim.failure(wire.SHIP)
    refused = sim.shop.ship(tid, codes, topups)
    if refused == "ALREADY":
        return _json(wire.error_json(15, "Remote service error", wire.ALREADY_DELIVERED, "the trade was delivered already"))
    if refused == "NOT_FOUND":
        return _json(wire.error_json(15, "Remote service error", "isv.trade-not-exist", "no such trade"))
    if refused == "CLOSED":
        return _json(wire.error_json(15, "Remote service error", "isv.trade-closed", "the trade is closed"))
    return _json({wire.response_name(wire.SHIP): {"shipping": {"is_success": True}}})


async def _decide(sim: Marketplace, method: str, params: dict[str, str]) -> Response:
    refund_id, tid = params.get("refund_id", ""), params.get("tid", "")
    agree = method == wire.AGREE
    message = params.get("refuse_message", "")
    if not refund_id or not tid or (not agree and not message.strip()):
        raise ValueError("refund_id and tid, and a refuse_message to refuse")
    amount = str(Money.of(params.get("refund_fee", ""), wire.CURRENCY).amount) if agree else ""
    if sim.fails("fail_decisions", 0.0):
        return await sim.failure(method)
    refused = sim.shop.decide(refund_id, tid, agree, message[:500], amount)
    if refused == "ALREADY":
        return _json(wire.error_json(15, "Remote service error", wire.ALREADY_DECIDED, "the refund was decided already"))
    if refused == "NOT_FOUND":
        return _json(wire.error_json(15, "Remote service error", "isv.refund-not-exist", "no such refund"))
    if refused == "STATUS":
        return _json(wire.error_json(15, "Remote service error", "isv.refund-status-invalid", "the refund is not waiting"))
    return _json({wire.response_name(method): {"is_success": True}})


async def _control(request: Request) -> Response:
    sim = _sim(request)
    if request.method == "POST":
        try:
            changes = orjson.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of the settings to change")
            trial = Faults(**vars(sim.faults))
            trial.update(changes)  # all or nothing: a bad value changes no setting
            sim.faults.update(changes)
        except ValueError as error:
            return _json({"error": "BAD_REQUEST", "message": str(error)}, 400)
    return _json(sim.faults.as_json())


async def _sell(request: Request) -> Response:
    sim = _sim(request)
    try:
        order = orjson.loads(await request.body())
        if not isinstance(order, dict):
            raise ValueError("send a JSON object")
        items = order.get("lines") or [{k: order.get(k) for k in ("outer_id", "quantity", "price")}]
        lines = []
        for item in items:
            quantity = item.get("quantity") or 1
            if not isinstance(item.get("outer_id"), str) or not isinstance(quantity, int) or quantity < 1:
                raise ValueError("each line has an outer_id and a whole quantity from 1")
            lines.append((item["outer_id"], quantity, Money.of(str(item.get("price") or "0.01"), "CNY")))
    except (ValueError, MoneyError) as error:
        return _json({"error": "BAD_REQUEST", "message": str(error)}, 400)
    trade = sim.shop.sell(lines, account=order.get("account"), phone=order.get("phone"))
    pushed = await sim.push(wire.TRADE_TOPIC, wire.trade_json(trade)) if order.get("push") else None
    return _json({"trade": wire.trade_json(trade), "pushed": pushed})


async def _refund(request: Request) -> Response:
    sim = _sim(request)
    try:
        asked = orjson.loads(await request.body())
        if not isinstance(asked, dict) or not isinstance(asked.get("tid"), str):
            raise ValueError("send {\"tid\": \"...\"}")
    except ValueError as error:
        return _json({"error": "BAD_REQUEST", "message": str(error)}, 400)
    if asked.get("withdraw"):
        refund = sim.shop.withdraw(asked["tid"])
    else:
        refund = sim.shop.refund(asked["tid"], str(asked.get("reason") or "buyer asked"))
    if refund is None:
        return _json({"error": "NOT_FOUND", "message": "no such trade or refund"}, 404)
    pushed = await sim.push(wire.REFUND_TOPIC, wire.refund_json(refund)) if asked.get("push") else None
    return _json({"refund": wire.refund_json(refund), "pushed": pushed})


async def _all_trades(request: Request) -> Response:
    return _json([wire.trade_json(trade) for trade in _sim(request).shop.trades.values()])


async def _refunds_decided(request: Request) -> Response:
    shop = _sim(request).shop
    return _json([{**wire.refund_json(refund), "decision": decision.as_json() if decision else None}
                  for refund in shop.refunds.values() for decision in [shop.decisions.get(refund.refund_id)]])


async def _deliveries(request: Request) -> Response:
    return _json([delivery.as_json() for delivery in _sim(request).shop.deliveries.values()])


def create_marketplace(
    app_key: str, app_secret: str, *, seed: int | None = None, clock: Callable[[], datetime] = _now,
    max_trades: int = 10_000, **faults: Any,
) -> Starlette:
    """The simulator app; `faults` are Faults fields (duplicate_rate=0.2, fail_pulls=1, ...)."""
    settings = Faults()
    settings.update(faults)
    sim = Marketplace(app_key, app_secret, settings, Shop(clock, seed=seed, max_trades=max_trades), clock)
    app = Starlette(
        routes=[
            Route("/router/rest", _api, methods=["POST"]),
            Route("/control", _control, methods=["GET", "POST"]),
            Route("/control/trades", _sell, methods=["POST"]),
            Route("/control/trades", _all_trades, methods=["GET"]),
            Route("/control/refunds", _refund, methods=["POST"]),
            Route("/control/refunds", _refunds_decided, methods=["GET"]),
            Route("/control/deliveries", _deliveries, methods=["GET"]),
        ],
        lifespan=sim.running,
    )
    app.state.marketplace = sim
    return app

