"""A simulated Alipay open platform, speaking the protocol of providers/alipay_wire.py.

    POST /gateway.do     alipay.trade.create, alipay.trade.query, alipay.trade.refund (signed
                         form in, signed JSON out)
    GET  /gateway.do     alipay.trade.page.pay / alipay.trade.wap.pay: the buyer's browser
                         arrives with the signed request and sees the cashier page
    POST /sim/pay        the cashier's pay button: the same signed request, paid
    POST /sim/trade-pay  a mini-program's my.tradePay: {"tradeNO": …}
    GET  /sim/bills/{t}  a day's bill (alipay.data.dataservice.bill.downloadurl.query gives the address)
    GET|POST /control, GET /control/notifications   faults and deliveries

Notifications are forms signed with the simulator's Alipay key (sign and sign_type left out
of the signed text), sent to notify_url until the merchant answers `success`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from providers import alipay_wire as wire
from providers import keys
from providers.sim_courier import Courier, Delivery, Faults
from providers.statements import write_alipay_bill


@dataclass
class Trade:
    app_id: str
    out_trade_no: str
    total_fen: int
    subject: str
    notify_url: str
    trade_no: str
    status: str = "WAIT_BUYER_PAY"
    paid_at: str = ""
    refunds: dict[str, int] = field(default_factory=dict)  # out_request_no -> fen
    refund_times: dict[str, tuple[int, str]] = field(default_factory=dict)  # out_request_no -> (fen, when)


class AlipaySim:
    def __init__(self, app_id: str, app_public_key: str, alipay_private_key: str, faults: Faults,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.app_id, self.app_public_key, self.private_key = app_id, app_public_key, alipay_private_key
        self.courier = Courier(faults, transport)
        self.trades: dict[str, Trade] = {}
        self.bills: dict[str, bytes] = {}
        self._next = 1

    def answer(self, method: str, data: dict[str, Any]) -> Response:
        key = method.replace(".", "_") + "_response"
        inner = orjson.dumps(data)
        signature = keys.sign(self.private_key, inner)
        body = b'{"' + key.encode() + b'":' + inner + b',"sign":' + orjson.dumps(signature) + b"}"
        return Response(body, media_type="application/json;charset=utf-8")

    def check(self, params: Mapping[str, str]) -> str | None:
        if params.get("app_id") != self.app_id:
            return "isv.invalid-app-id"
        if params.get("sign_type") != "RSA2" or not wire.verify_request(self.app_public_key, params):
            return "isv.invalid-signature"
        return None

    def trade(self, params: Mapping[str, str], biz: dict[str, Any]) -> Trade | str:
        """The trade a request starts (or the one it started before), or why it cannot."""
        number, total = biz.get("out_trade_no"), wire.fen(str(biz.get("total_amount", "")))
        if not isinstance(number, str) or not number or total is None or total <= 0 or not biz.get("subject"):
            return "ACQ.INVALID_PARAMETER"
        known = self.trades.get(number)
        if known is not None:
            return known if known.total_fen == total else "ACQ.CONTEXT_INCONSISTENT"
        trade = Trade(self.app_id, number, total, str(biz["subject"]), params.get("notify_url", ""),
                      f"{datetime.now(UTC):%Y%m%d}22001{self._next:011d}")
        self._next += 1
        self.trades[number] = trade
        return trade

    def pay(self, trade: Trade) -> None:
        if trade.status != "WAIT_BUYER_PAY":
            return
        trade.status = "TRADE_SUCCESS"
        trade.paid_at = wire.timestamp(datetime.now(UTC))
        total = trade.total_fen + self.courier.faults.amount_offset_fen
        self.notify(trade, {"trade_status": "TRADE_SUCCESS", "total_amount": wire.yuan(total),
                            "receipt_amount": wire.yuan(total), "buyer_pay_amount": wire.yuan(total),
                            "gmt_payment": trade.paid_at})

    def notify(self, trade: Trade, fields: dict[str, str]) -> None:
        if not trade.notify_url:
            return
        notify_id = uuid.uuid4().hex

        async def attempt(client: httpx.AsyncClient) -> httpx.Response:
            form = {"notify_time": wire.timestamp(datetime.now(UTC)), "notify_type": "trade_status_sync",
                    "notify_id": notify_id, "app_id": trade.app_id, "charset": "utf-8", "version": "1.0",
                    "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "subject": trade.subject,
                    "buyer_id": "2088102177846880", "seller_id": "2088102177840000",
                    "total_amount": wire.yuan(trade.total_fen), **fields}
            form["sign"] = keys.sign(self.private_key, wire.content(form, exclude=("sign", "sign_type")))
            form["sign_type"] = "RSA2"
            return await client.post(trade.notify_url, data=form)

        self.courier.send(Delivery(notify_id, fields.get("trade_status", ""), trade.notify_url, trade.out_trade_no),
                          attempt, lambda answer: answer.status_code == 200 and answer.text.strip() == "success")


def _sim(request: Request) -> AlipaySim:
    return request.app.state.sim  # type: ignore[no-any-return]


def _biz(params: Mapping[str, str]) -> dict[str, Any]:
    try:
        biz = orjson.loads(params.get("biz_content") or "{}")
    except orjson.JSONDecodeError:
        return {}
    return biz if isinstance(biz, dict) else {}


def _failed(code: str) -> dict[str, Any]:
    return {"code": "40004", "msg": "Business Failed", "sub_code": code, "sub_msg": code}


async def _gateway(request: Request) -> Response:
    sim = _sim(request)
    if request.method == "GET":
        return _cashier(sim, dict(request.query_params), request)
    params = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    return _api(sim, params, request)


def _api(sim: AlipaySim, params: dict[str, str], request: Request) -> Response:
    method = params.get("method", "")
    if (why := sim.check(params)) is not None:
        return sim.answer(method, {"code": "40002", "msg": "Invalid Arguments", "sub_code": why, "sub_msg": why})
    biz = _biz(params)
    if method == "alipay.trade.create":
        if not biz.get("buyer_open_id") and not biz.get("buyer_id"):
            return sim.answer(method, _failed("ACQ.INVALID_PARAMETER"))
        trade = sim.trade(params, biz)
        if isinstance(trade, str):
            return sim.answer(method, _failed(trade))
        return sim.answer(method, {"code": "10000", "msg": "Success", "out_trade_no": trade.out_trade_no,
                                   "trade_no": trade.trade_no})
    if method == "alipay.trade.query":
        found = sim.trades.get(str(biz.get("out_trade_no")))
        if found is None:
            return sim.answer(method, _failed("ACQ.TRADE_NOT_EXIST"))
        return sim.answer(method, {"code": "10000", "msg": "Success", "trade_no": found.trade_no,
                                   "out_trade_no": found.out_trade_no, "trade_status": found.status,
                                   "total_amount": wire.yuan(found.total_fen)})
    if method == "alipay.trade.refund":
        return _refund(sim, method, biz)
    if method == "alipay.trade.fastpay.refund.query":
        asked = sim.trades.get(str(biz.get("out_trade_no")))
        number = str(biz.get("out_request_no") or "")
        if asked is None or number not in asked.refunds:
            return sim.answer(method, {"code": "10000", "msg": "Success"})
        return sim.answer(method, {"code": "10000", "msg": "Success", "out_trade_no": asked.out_trade_no,
                                   "out_request_no": number, "refund_amount": wire.yuan(asked.refunds[number]),
                                   "refund_status": "REFUND_SUCCESS"})
    if method == "alipay.data.dataservice.bill.downloadurl.query":
        rows = _bill_rows(sim, str(biz.get("bill_date", "")))
        if not rows:
            return sim.answer(method, {"code": "40004", "msg": "Business Failed", "sub_code": "isp.bill_not_exist"})
        token = uuid.uuid4().hex
        sim.bills[token] = write_alipay_bill("20881021778400000156", str(biz["bill_date"]), rows)
        base = str(request.url).split("?")[0].removesuffix("/gateway.do")
        return sim.answer(method, {"code": "10000", "msg": "Success", "bill_download_url": f"{base}/sim/bills/{token}"})
    return sim.answer(method, {"code": "40004", "msg": "Business Failed", "sub_code": "isv.invalid-method"})


def _bill_rows(sim: AlipaySim, day: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for trade in sim.trades.values():
        common = {"支付宝交易号": trade.trade_no, "商户订单号": trade.out_trade_no, "商品名称": trade.subject,
                  "对方账户": "159****5620", "订单金额（元）": wire.yuan(trade.total_fen)}
        if trade.paid_at.startswith(day) and trade.paid_at:
            rows.append({**common, "业务类型": "交易", "创建时间": trade.paid_at, "完成时间": trade.paid_at,
                         "商家实收（元）": wire.yuan(trade.total_fen), "服务费（元）": "0.00"})
        for number, (fen, at) in trade.refund_times.items():
            if at.startswith(day):
                rows.append({**common, "业务类型": "退款", "创建时间": at, "完成时间": at,
                             "商家实收（元）": "-" + wire.yuan(fen), "退款批次号/请求号": number, "服务费（元）": "0.00"})
    return rows


async def _bill(request: Request) -> Response:
    bill = _sim(request).bills.get(request.path_params["token"])
    if bill is None:
        return Response(b"", 404)
    return Response(bill, media_type="application/zip")


def _refund(sim: AlipaySim, method: str, biz: dict[str, Any]) -> Response:
    trade = sim.trades.get(str(biz.get("out_trade_no")))
    amount, request_no = wire.fen(str(biz.get("refund_amount", ""))), str(biz.get("out_request_no") or "")
    if trade is None or trade.status not in ("TRADE_SUCCESS", "TRADE_CLOSED") or amount is None or amount <= 0:
        return sim.answer(method, _failed("ACQ.TRADE_STATUS_ERROR"))
    first = request_no not in trade.refunds
    if first:
        if amount > trade.total_fen - sum(trade.refunds.values()):
            return sim.answer(method, _failed("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"))
        trade.refunds[request_no] = amount
        trade.refund_times[request_no] = (amount, wire.timestamp(datetime.now(UTC)))
    refunded = sum(trade.refunds.values())
    if first:
        if refunded == trade.total_fen:
            trade.status = "TRADE_CLOSED"
        sim.notify(trade, {"trade_status": trade.status, "out_biz_no": request_no, "refund_fee": wire.yuan(refunded),
                           "gmt_refund": wire.timestamp(datetime.now(UTC)) + ".000"})
    return sim.answer(method, {"code": "10000", "msg": "Success", "trade_no": trade.trade_no,
                               "out_trade_no": trade.out_trade_no, "buyer_logon_id": "159****5620",
                               "fund_change": "Y" if first else "N", "refund_fee": wire.yuan(refunded)})


def _cashier(sim: AlipaySim, params: dict[str, str], request: Request) -> Response:
    if sim.check(params) is not None or params.get("method") not in ("alipay.trade.page.pay", "alipay.trade.wap.pay"):
        return HTMLResponse("<p>参数错误：签名或方法不对</p>", 400)
    trade = sim.trade(params, _biz(params))
    if isinstance(trade, str):
        return HTMLResponse(f"<p>{trade}</p>", 400)
    return HTMLResponse(f"""<!doctype html><meta name="viewport" content="width=device-width"><link rel="icon" href="data:,">
<title>支付宝（模拟）</title><h1>支付宝收银台（模拟）</h1><p>{trade.subject}</p><p>¥{wire.yuan(trade.total_fen)}</p>
<form method="post" action="sim/pay?{urlencode(params)}"><button>确认付款</button></form>""")


async def _pay(request: Request) -> Response:
    sim = _sim(request)
    params = dict(request.query_params)
    if sim.check(params) is not None:
        return HTMLResponse("<p>签名错误</p>", 400)
    trade = sim.trade(params, _biz(params))
    if isinstance(trade, str):
        return HTMLResponse(f"<p>{trade}</p>", 400)
    sim.pay(trade)
    return HTMLResponse("<p>付款成功</p>")


async def _trade_pay(request: Request) -> Response:
    sim = _sim(request)
    try:
        trade_no = str(orjson.loads(await request.body())["tradeNO"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        trade_no = ""
    trade = next((t for t in sim.trades.values() if t.trade_no == trade_no), None)
    if trade is None:
        return Response(orjson.dumps({"resultCode": "4000"}), 404, media_type="application/json")
    sim.pay(trade)
    return Response(orjson.dumps({"resultCode": "9000", "tradeNO": trade_no}), media_type="application/json")


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


def create_alipay_sim(app_id: str, app_public_key: str, alipay_private_key: str, *, faults: Faults | None = None,
                      transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    sim = AlipaySim(app_id, app_public_key, alipay_private_key, faults or Faults(), transport)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await sim.courier.close()

    app = Starlette(routes=[
        Route("/gateway.do", _gateway, methods=["GET", "POST"]),
        Route("/sim/pay", _pay, methods=["POST"]),
        Route("/sim/trade-pay", _trade_pay, methods=["POST"]),
        Route("/sim/bills/{token}", _bill, methods=["GET"]),
        Route("/control", _control, methods=["GET", "POST"]),
        Route("/control/notifications", _notifications, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.sim = sim
    return app
