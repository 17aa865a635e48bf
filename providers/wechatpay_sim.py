"""A simulated WeChat Pay (API v3), speaking the protocol of providers/wechatpay_wire.py.

    POST /v3/pay/transactions/{jsapi,h5,native}   start a payment (signed request, signed answer)
    GET  /v3/pay/transactions/out-trade-no/{no}   query it
    GET  /v3/bill/tradebill, /v3/billdownload/file  the day's trade bill (signed answer, then the file)
    POST /v3/refund/domestic/refunds              refund part or all of it
    POST /sim/request-payment                     the buyer pays as wx.requestPayment would:
                                                  the JSAPI parameters, paySign checked
    GET  /sim/h5/{token}, POST /sim/h5/{token}    the H5 cashier page (h5_url) and its pay button
    POST /sim/scan                                a Native code_url scanned and paid: {"code_url": …}
    GET|POST /control, GET /control/notifications faults (providers/sim_courier.py) and deliveries

Notifications go to the payment's notify_url, signed with the simulator's platform key,
the resource encrypted with the merchant's API v3 key, until the merchant answers 2xx.
/sim and /control are unsigned: the simulator is a test and demo tool.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from providers import keys
from providers.alipay_wire import yuan
from providers.statements import write_wechat_bill
from providers import wechatpay_wire as wire
from providers.sim_courier import Courier, Delivery, Faults

CHINA = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Merchant:
    mchid: str
    serial_no: str  # of the merchant's certificate: names the key its requests are signed with
    public_key: str  # PEM, the merchant's
    api_v3_key: str
    app_ids: frozenset[str]


@dataclass
class Trade:
    body: dict[str, Any]
    kind: str
    handle: str
    state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: str = ""
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def refunded(self) -> int:
        return sum(r["amount"]["refund"] for r in self.refunds.values())


class WechatPaySim:
    def __init__(self, merchant: Merchant, platform_private_key: str, platform_key_id: str, faults: Faults,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.merchant = merchant
        self.private_key, self.key_id = platform_private_key, platform_key_id
        self.courier = Courier(faults, transport)
        self.trades: dict[str, Trade] = {}
        self._by_handle: dict[str, str] = {}
        self.bills: dict[str, bytes] = {}
        self.queries = 0  # how often the merchant asked about a payment
        self._next = 1

    def answer(self, data: object, status: int = 200) -> Response:
        body = orjson.dumps(data) if data is not None else b""
        return Response(body, status, media_type="application/json",
                        headers=wire.signed_headers(self.private_key, self.key_id, body, time.time()))

    def error(self, status: int, code: str, message: str) -> Response:
        return self.answer({"code": code, "message": message}, status)

    def check(self, request: Request, body: bytes) -> str | None:
        """Why a merchant's request is refused (its Authorization), or None."""
        fields = wire.parse_authorization(request.headers.get("authorization"))
        needed = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
        if not all(fields.get(name) for name in needed):
            return "the Authorization header is missing or not WECHATPAY2-SHA256-RSA2048"
        if fields["mchid"] != self.merchant.mchid or fields["serial_no"] != self.merchant.serial_no:
            return "unknown merchant or certificate serial"
        if not fields["timestamp"].isdigit() or abs(time.time() - int(fields["timestamp"])) > wire.TOLERANCE_SECONDS:
            return "the request's timestamp is out of range"
        url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        path = request.scope.get("root_path", "")
        url = url.removeprefix(path) if path else url
        message = wire.request_message(request.method, url, fields["timestamp"], fields["nonce_str"], body.decode())
        if not keys.verify(self.merchant.public_key, message, fields["signature"]):
            return "the signature does not match"
        return None

    def new_trade(self, kind: str, body: dict[str, Any]) -> Trade:
        handle = {"jsapi": f"wx{secrets.token_hex(14)}",
                  "h5": f"/sim/h5/{secrets.token_urlsafe(12)}",
                  "native": f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(8)}"}[kind]
        trade = Trade(body, kind, handle)
        self.trades[body["out_trade_no"]] = trade
        self._by_handle[handle] = body["out_trade_no"]
        return trade

    def trade_by_handle(self, handle: str) -> Trade | None:
        number = self._by_handle.get(handle)
        return self.trades.get(number) if number else None

    def pay(self, trade: Trade) -> None:
        if trade.state != "NOTPAY":
            return
        trade.state = "SUCCESS"
        trade.transaction_id = f"4200{datetime.now(CHINA):%Y%m%d}{self._next:010d}"
        self._next += 1
        trade.success_time = datetime.now(CHINA).isoformat(timespec="seconds")
        self.notify("TRANSACTION.SUCCESS", "transaction", trade.body["notify_url"], trade.body["out_trade_no"],
                    self.transaction(trade, offset=self.courier.faults.amount_offset_fen))

    def transaction(self, trade: Trade, offset: int = 0) -> dict[str, Any]:
        total = trade.body["amount"]["total"] + offset
        data: dict[str, Any] = {
            "appid": trade.body["appid"], "mchid": trade.body["mchid"], "out_trade_no": trade.body["out_trade_no"],
            "trade_type": trade.kind.upper(), "trade_state": trade.state, "trade_state_desc": trade.state,
            "amount": {"total": total, "payer_total": total, "currency": trade.body["amount"].get("currency", "CNY"),
                       "payer_currency": "CNY"},
        }
        if trade.transaction_id:
            data.update(transaction_id=trade.transaction_id, success_time=trade.success_time, bank_type="OTHERS",
                        payer={"openid": (trade.body.get("payer") or {}).get("openid", "o-sim-buyer")})
        return data

    def notify(self, event: str, original_type: str, url: str, out_trade_no: str, resource: dict[str, Any]) -> None:
        notification_id = str(uuid.uuid4())
        body = orjson.dumps({
            "id": notification_id, "create_time": datetime.now(CHINA).isoformat(timespec="seconds"),
            "resource_type": "encrypt-resource", "event_type": event,
            "summary": "支付成功" if event.startswith("TRANSACTION") else "退款状态变更",
            "resource": wire.encrypt_resource(self.merchant.api_v3_key, orjson.dumps(resource), original_type,
                                              original_type),
        })

        async def attempt(client: httpx.AsyncClient) -> httpx.Response:
            headers = {**wire.signed_headers(self.private_key, self.key_id, body, time.time()),
                       "Content-Type": "application/json"}
            return await client.post(url, content=body, headers=headers)

        self.courier.send(Delivery(notification_id, event, url, out_trade_no), attempt,
                          lambda answer: answer.status_code in (200, 204))


def _sim(request: Request) -> WechatPaySim:
    return request.app.state.sim  # type: ignore[no-any-return]


async def _create(request: Request) -> Response:
    sim, kind = _sim(request), request.path_params["kind"]
    if kind not in ("jsapi", "h5", "native"):
        return sim.error(404, "NOT_FOUND", "no such API")
    body = await request.body()
    if (why := sim.check(request, body)) is not None:
        return sim.error(401, "SIGN_ERROR", why)
    try:
        data = orjson.loads(body)
        amount, number = data["amount"], data["out_trade_no"]
        valid = (isinstance(amount.get("total"), int) and amount["total"] > 0 and amount.get("currency", "CNY") == "CNY"
                 and data["mchid"] == sim.merchant.mchid and isinstance(number, str) and 6 <= len(number) <= 32
                 and data["notify_url"].startswith(("http://", "https://")) and data.get("description"))
        if kind == "jsapi":
            valid = valid and bool((data.get("payer") or {}).get("openid"))
        if kind == "h5":
            valid = valid and bool((data.get("scene_info") or {}).get("payer_client_ip"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        valid = False
    if not valid:
        return sim.error(400, "PARAM_ERROR", "a required field is missing or invalid")
    if data["appid"] not in sim.merchant.app_ids:
        return sim.error(400, "APPID_MCHID_NOT_MATCH", "appid and mch_id do not match")
    known = sim.trades.get(number)
    if known is not None:
        if known.body != data or known.kind != kind:
            return sim.error(400, "INVALID_REQUEST", "out_trade_no was used with other parameters")
        trade = known
    else:
        trade = sim.new_trade(kind, data)
    handle = {"jsapi": {"prepay_id": trade.handle},
              "h5": {"h5_url": str(request.base_url).rstrip("/") + request.scope.get("root_path", "") + trade.handle},
              "native": {"code_url": trade.handle}}[kind]
    return sim.answer(handle)


async def _query(request: Request) -> Response:
    sim = _sim(request)
    if (why := sim.check(request, b"")) is not None:
        return sim.error(401, "SIGN_ERROR", why)
    sim.queries += 1
    trade = sim.trades.get(request.path_params["number"])
    if trade is None or request.query_params.get("mchid") != sim.merchant.mchid:
        return sim.error(404, "ORDER_NOT_EXIST", "no such order")
    return sim.answer(sim.transaction(trade))


async def _refund(request: Request) -> Response:
    sim = _sim(request)
    body = await request.body()
    if (why := sim.check(request, body)) is not None:
        return sim.error(401, "SIGN_ERROR", why)
    try:
        data = orjson.loads(body)
        number, amount = data["out_refund_no"], data["amount"]
        refund_fen, total = amount["refund"], amount["total"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return sim.error(400, "PARAM_ERROR", "a required field is missing")
    trade = next((t for t in sim.trades.values() if t.transaction_id and t.transaction_id == data.get("transaction_id")),
                 sim.trades.get(str(data.get("out_trade_no"))))
    if trade is None or not trade.transaction_id:
        return sim.error(404, "RESOURCE_NOT_EXISTS", "no paid order to refund")
    if number in trade.refunds:
        return sim.answer(trade.refunds[number])
    if not isinstance(refund_fen, int) or refund_fen <= 0 or total != trade.body["amount"]["total"] \
            or refund_fen > total - trade.refunded:
        return sim.error(400, "INVALID_REQUEST", "the refund amount is not available")
    refund = {"refund_id": f"5030{len(trade.refunds) + 1:08d}{trade.transaction_id[-8:]}", "out_refund_no": number,
              "transaction_id": trade.transaction_id, "out_trade_no": trade.body["out_trade_no"], "channel": "ORIGINAL",
              "user_received_account": "支付用户零钱", "status": "PROCESSING",
              "create_time": datetime.now(CHINA).isoformat(timespec="seconds"),
              "amount": {"refund": refund_fen, "total": total, "payer_refund": refund_fen, "payer_total": total,
                         "currency": "CNY"}}
    trade.refunds[number] = refund
    # The money goes back now; whoever asks from here on hears SUCCESS, notified or not.
    trade.refunds[number] = {**refund, "status": "SUCCESS"}
    if data.get("notify_url"):
        sim.notify("REFUND.SUCCESS", "refund", data["notify_url"], trade.body["out_trade_no"], {
            "mchid": sim.merchant.mchid, "out_trade_no": trade.body["out_trade_no"],
            "transaction_id": trade.transaction_id, "out_refund_no": number, "refund_id": refund["refund_id"],
            "refund_status": "SUCCESS", "success_time": datetime.now(CHINA).isoformat(timespec="seconds"),
            "user_received_account": "支付用户零钱",
            "amount": {"total": total, "refund": refund_fen, "payer_total": total, "payer_refund": refund_fen},
        })
    return sim.answer(refund)


def _bill_rows(sim: WechatPaySim, day: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for trade in sim.trades.values():
        if not trade.transaction_id:
            continue
        total = yuan(trade.body["amount"]["total"])
        common = {"公众账号ID": trade.body["appid"], "商户号": trade.body["mchid"], "特约商户号": "0",
                  "微信订单号": trade.transaction_id, "商户订单号": trade.body["out_trade_no"],
                  "用户标识": (trade.body.get("payer") or {}).get("openid", "o-sim-buyer"), "交易类型": trade.kind.upper(),
                  "付款银行": "OTHERS", "货币种类": "CNY", "应结订单金额": total, "代金券金额": "0.00",
                  "商品名称": trade.body["description"], "手续费": "0.00000", "费率": "0.60%", "订单金额": total}
        if trade.success_time.startswith(day):
            rows.append({**common, "交易时间": trade.success_time.replace("T", " ")[:19], "交易状态": "SUCCESS",
                         "微信退款单号": "0", "商户退款单号": "0", "退款金额": "0.00", "充值券退款金额": "0.00",
                         "申请退款金额": "0.00"})
        for refund in trade.refunds.values():
            if refund["create_time"].startswith(day):
                rows.append({**common, "交易时间": refund["create_time"].replace("T", " ")[:19], "交易状态": "REFUND",
                             "微信退款单号": refund["refund_id"], "商户退款单号": refund["out_refund_no"],
                             "退款金额": yuan(refund["amount"]["refund"]), "充值券退款金额": "0.00",
                             "退款类型": "ORIGINAL", "退款状态": "SUCCESS",
                             "申请退款金额": yuan(refund["amount"]["refund"])})
    return rows


async def _tradebill(request: Request) -> Response:
    sim = _sim(request)
    if (why := sim.check(request, b"")) is not None:
        return sim.error(401, "SIGN_ERROR", why)
    day = request.query_params.get("bill_date", "")
    rows = _bill_rows(sim, day)
    if not rows:
        return sim.error(400, "NO_STATEMENT_EXIST", "no statement for this day")
    bill = write_wechat_bill(rows).encode()
    token = secrets.token_urlsafe(12)
    sim.bills[token] = bill
    base = str(request.base_url).rstrip("/") + request.scope.get("root_path", "")
    return sim.answer({"download_url": f"{base}/v3/billdownload/file?token={token}", "hash_type": "SHA1",
                       "hash_value": hashlib.sha1(bill).hexdigest()})


async def _billdownload(request: Request) -> Response:
    sim = _sim(request)
    if (why := sim.check(request, b"")) is not None:
        return sim.error(401, "SIGN_ERROR", why)
    bill = sim.bills.get(request.query_params.get("token", ""))
    if bill is None:
        return sim.error(404, "RESOURCE_NOT_EXISTS", "no such bill")
    return Response(bill, media_type="text/plain;charset=utf-8")


async def _refund_query(request: Request) -> Response:
    sim = _sim(request)
    if (why := sim.check(request, b"")) is not None:
        return sim.error(401, "SIGN_ERROR", why)
    number = request.path_params["number"]
    found = next((t.refunds[number] for t in sim.trades.values() if number in t.refunds), None)
    if found is None:
        return sim.error(404, "RESOURCE_NOT_EXISTS", "no such refund")
    return sim.answer(found)


async def _request_payment(request: Request) -> Response:
    sim = _sim(request)
    try:
        params = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        params = None
    if not isinstance(params, dict) or not wire.verify_pay_sign(sim.merchant.public_key, params):
        return Response(orjson.dumps({"errMsg": "requestPayment:fail sign error"}), 400, media_type="application/json")
    trade = sim.trade_by_handle(str(params["package"]).removeprefix("prepay_id="))
    if trade is None or trade.body["appid"] != params["appId"]:
        return Response(orjson.dumps({"errMsg": "requestPayment:fail no such prepay_id"}), 400,
                        media_type="application/json")
    sim.pay(trade)
    return Response(orjson.dumps({"errMsg": "requestPayment:ok"}), media_type="application/json")


async def _h5(request: Request) -> Response:
    sim = _sim(request)
    trade = sim.trade_by_handle(f"/sim/h5/{request.path_params['token']}")
    if trade is None:
        return HTMLResponse("<p>链接已失效</p>", 404)
    if request.method == "POST":
        sim.pay(trade)
        back = _same_site(request, request.query_params.get("redirect_url", ""))
        if back:  # WeChat Pay sends the buyer back to the merchant's redirect_url
            return HTMLResponse(f'<link rel="icon" href="data:,"><meta http-equiv="refresh" content="0;url={html.escape(back)}"><p>支付成功</p>')
        return HTMLResponse("<p>支付成功</p>")
    yuan = trade.body["amount"]["total"] / 100  # display only
    return HTMLResponse(f"""<!doctype html><meta name="viewport" content="width=device-width"><link rel="icon" href="data:,">
<title>微信支付（模拟）</title><h1>微信支付（模拟）</h1><p>{html.escape(trade.body["description"])}</p><p>¥{yuan:.2f}</p>
<form method="post"><button>确认支付</button></form>""")


def _same_site(request: Request, url: str) -> str:
    """`url` if it is on the simulator's own host (no open redirect, even in a simulator)."""
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc == request.url.netloc else ""


async def _scan(request: Request) -> Response:
    sim = _sim(request)
    try:
        trade = sim.trade_by_handle(str(orjson.loads(await request.body())["code_url"]))
    except (orjson.JSONDecodeError, KeyError, TypeError):
        trade = None
    if trade is None:
        return Response(orjson.dumps({"error": "no such code_url"}), 404, media_type="application/json")
    sim.pay(trade)
    return Response(orjson.dumps({"paid": trade.body["out_trade_no"]}), media_type="application/json")


async def _control(request: Request) -> Response:
    sim = _sim(request)
    if request.method == "POST":
        try:
            changes = orjson.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of the faults to change")
            sim.courier.faults.update(changes)
        except ValueError as error:
            return Response(orjson.dumps({"error": str(error)}), 400, media_type="application/json")
    return Response(orjson.dumps(sim.courier.faults.as_json()), media_type="application/json")


async def _notifications(request: Request) -> Response:
    return Response(orjson.dumps([d.as_json() for d in _sim(request).courier.deliveries]),
                    media_type="application/json")


def create_wechatpay_sim(merchant: Merchant, platform_private_key: str, platform_key_id: str, *,
                         faults: Faults | None = None,
                         transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    sim = WechatPaySim(merchant, platform_private_key, platform_key_id, faults or Faults(), transport)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await sim.courier.close()

    app = Starlette(routes=[
        Route("/v3/pay/transactions/out-trade-no/{number}", _query, methods=["GET"]),
        Route("/v3/pay/transactions/{kind}", _create, methods=["POST"]),
        Route("/v3/refund/domestic/refunds", _refund, methods=["POST"]),
        Route("/v3/refund/domestic/refunds/{number}", _refund_query, methods=["GET"]),
        Route("/v3/bill/tradebill", _tradebill, methods=["GET"]),
        Route("/v3/billdownload/file", _billdownload, methods=["GET"]),
        Route("/sim/request-payment", _request_payment, methods=["POST"]),
        Route("/sim/h5/{token}", _h5, methods=["GET", "POST"]),
        Route("/sim/scan", _scan, methods=["POST"]),
        Route("/control", _control, methods=["GET", "POST"]),
        Route("/control/notifications", _notifications, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.sim = sim
    return app


