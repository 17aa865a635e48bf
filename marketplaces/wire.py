"""The open platform's JSON: trades, refunds and answers, both ways (adapter and simulator).

Amounts are yuan as decimal strings ("9.90"), times are Beijing time as the platforms write
them, ids are strings (Taobao's tids outgrow a double). The method names follow Taobao's:

    taobao.trades.sold.increment.get   paid trades modified in a window, paged
    taobao.trade.fullinfo.get          one trade
    taobao.virtual.delivery.send       虚拟发货: the codes (CODES), the top-ups' results (RECHARGE),
                                       or both for a bundle of codes and top-ups (MIXED)
    taobao.refunds.receive.get         refunds buyers asked for, modified in a window, paged
    taobao.rp.refunds.agree            the seller agrees to a refund (refund_id, refund_fee)
    taobao.rp.refund.refuse            the seller refuses one (refund_id, refuse_message)

An answer is `{"<method without the taobao. prefix, dots as underscores>_response": {...}}`,
or `{"error_response": {"code", "msg", "sub_code", "sub_msg"}}`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson

from domain.money import Money, MoneyError
from marketplaces.base import MarketRefund, Trade, TradeLine
from marketplaces.signing import parse_time, timestamp

TRADES = "taobao.trades.sold.increment.get"
TRADE = "taobao.trade.fullinfo.get"
SHIP = "taobao.virtual.delivery.send"
REFUNDS = "taobao.refunds.receive.get"
AGREE = "taobao.rp.refunds.agree"
REFUSE = "taobao.rp.refund.refuse"
METHODS = (TRADES, TRADE, SHIP, REFUNDS, AGREE, REFUSE)

TRADE_TOPIC = "taobao_trade_TradeBuyerPay"  # pushed: a trade was paid
REFUND_TOPIC = "taobao_refund_RefundCreate"  # pushed: a buyer asked for a refund

ALREADY_DELIVERED = "isv.trade-already-delivered"
ALREADY_DECIDED = "isv.refund-already-decided"  # the same decision on a refund, sent again
CODES, RECHARGE, MIXED = "CODES", "RECHARGE", "MIXED"  # delivery_type of a delivery
CURRENCY = "CNY"


class WireError(ValueError):
    """A body that is not what the protocol says."""


def form(body: bytes, *, max_fields: int = 50) -> dict[str, str]:
    """A form-encoded body (application/x-www-form-urlencoded) as its fields; the last of a
    name repeated wins. WireError for a body that is not one."""
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body), max_num_fields=max_fields)
    except (UnicodeDecodeError, ValueError):
        raise WireError("the body is not a form") from None
    return dict(pairs)


def delivery_type(codes: bool, topups: bool) -> str:
    """What a delivery carries: codes, top-up results, or both (MIXED)."""
    if codes and topups:
        return MIXED
    return CODES if codes else RECHARGE


def orjson_text(data: object) -> str:
    return orjson.dumps(data).decode()


def response_name(method: str) -> str:
    return method.removeprefix("taobao.").replace(".", "_") + "_response"


def _money(value: object, name: str) -> Money:
    if not isinstance(value, str):
        raise WireError(f"{name} is a decimal string")
    try:
        return Money.of(value, CURRENCY)
    except MoneyError as error:
        raise WireError(f"{name}: {error}") from None


def _text(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise WireError(f"{name} is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise WireError(f"{name} is text")
    return str(value)[:200]


def _time(data: dict[str, Any], name: str, *, required: bool = True) -> Any:
    text = _text(data, name, required=required)
    if text is None:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise WireError(f"{name} is not a time") from None


def trade_json(trade: Trade) -> dict[str, Any]:
    return {
        "tid": trade.tid, "status": trade.status, "modified": timestamp(trade.modified),
        "pay_time": timestamp(trade.paid_at) if trade.paid_at else None, "payment": str(trade.payment.amount),
        "receiver_mobile": trade.buyer_phone, "recharge_account": trade.recharge_account,
        "orders": {"order": [{
            "oid": line.line_id, "num_iid": line.item_id, "sku_id": line.sku_id, "outer_sku_id": line.outer_id,
            "num": line.quantity, "price": str(line.price.amount),
        } for line in trade.lines]},
    }


def parse_trade(data: object) -> Trade:
    if not isinstance(data, dict):
        raise WireError("a trade is an object")
    orders = data.get("orders")
    rows = orders.get("order") if isinstance(orders, dict) else None
    if not isinstance(rows, list) or not rows:
        raise WireError("a trade has orders.order, one or more")
    lines = []
    for row in rows:
        if not isinstance(row, dict):
            raise WireError("an order line is an object")
        quantity = row.get("num")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 100_000:
            raise WireError("num is a whole number from 1")
        lines.append(TradeLine(
            line_id=_text(row, "oid") or "", item_id=_text(row, "num_iid") or "", sku_id=_text(row, "sku_id", required=False),
            outer_id=_text(row, "outer_sku_id", required=False) or _text(row, "outer_iid", required=False),
            quantity=quantity, price=_money(row.get("price"), "price"),
        ))
    return Trade(
        tid=_text(data, "tid") or "", status=_text(data, "status") or "", modified=_time(data, "modified"),
        payment=_money(data.get("payment"), "payment"), lines=tuple(lines), paid_at=_time(data, "pay_time", required=False),
        buyer_phone=_text(data, "receiver_mobile", required=False),
        recharge_account=_text(data, "recharge_account", required=False),
    )


def refund_json(refund: MarketRefund) -> dict[str, Any]:
    return {"refund_id": refund.refund_id, "tid": refund.tid, "status": refund.status,
            "refund_fee": str(refund.amount.amount), "modified": timestamp(refund.modified), "reason": refund.reason}


def parse_refund(data: object) -> MarketRefund:
    if not isinstance(data, dict):
        raise WireError("a refund is an object")
    return MarketRefund(
        refund_id=_text(data, "refund_id") or "", tid=_text(data, "tid") or "", status=_text(data, "status") or "",
        amount=_money(data.get("refund_fee"), "refund_fee"), modified=_time(data, "modified"),
        reason=_text(data, "reason", required=False) or "",
    )


def error_json(code: int, message: str, sub_code: str = "", sub_message: str = "") -> dict[str, Any]:
    return {"error_response": {"code": code, "msg": message, "sub_code": sub_code, "sub_msg": sub_message}}
