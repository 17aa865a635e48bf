"""What the gateway needs from a marketplace whose buyers' orders it fulfils.

A marketplace (Taobao, JD, PDD) collects the buyer's money and keeps the order; the seller,
here Quanyi on one of its channels, pulls the paid orders (or is told of them), delivers,
and reports the delivery back (虚拟发货: the codes, or the top-up's result). Each
marketplace speaks its own open platform; an adapter turns it into these few calls, and the
services never branch on which marketplace they talk to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from domain.money import Money

PAID = "WAIT_SELLER_SEND_GOODS"  # paid, waiting for the seller to deliver: the orders we take
CLOSED = "TRADE_CLOSED"  # refunded or cancelled on the marketplace before delivery


@dataclass(frozen=True, slots=True)
class TradeLine:
    """One line of a marketplace order. `outer_id` is what the seller typed into the item's
    (or the item SKU's) merchant code: by default our SKU code."""

    line_id: str  # the marketplace's sub-order id (oid)
    item_id: str  # num_iid
    sku_id: str | None
    outer_id: str | None
    quantity: int
    price: Money  # the unit list price on the marketplace


@dataclass(frozen=True, slots=True)
class Trade:
    """A marketplace order (trade), as much of it as we use."""

    tid: str  # the marketplace order number: our idempotency key on its channel
    status: str
    modified: datetime
    payment: Money  # what the buyer paid for the whole trade
    lines: tuple[TradeLine, ...]
    paid_at: datetime | None = None
    buyer_phone: str | None = None
    recharge_account: str | None = None  # the account a top-up credits (充值账号)


@dataclass(frozen=True, slots=True)
class TradePage:
    trades: list[Trade]
    has_next: bool


@dataclass(frozen=True, slots=True)
class DeliveredCode:
    number: str | None
    secret: str


@dataclass(frozen=True, slots=True)
class TopUpResult:
    account: str
    reference: str  # the top-up's reference at our supplier


@dataclass(frozen=True, slots=True)
class Shipment:
    """What a 虚拟发货 reports: the codes sold, or the top-ups made. Holds code secrets: never
    logged (its repr leaves them out)."""

    tid: str
    codes: tuple[DeliveredCode, ...] = field(default=(), repr=False)
    topups: tuple[TopUpResult, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class Shipped:
    """The marketplace's answer to a shipment. `already`: it had this trade's delivery
    recorded before (a report sent twice), which counts as reported."""

    ok: bool
    already: bool = False
    message: str = ""


@dataclass(frozen=True, slots=True)
class MarketRefund:
    """A refund the buyer asked for on the marketplace."""

    refund_id: str
    tid: str
    status: str  # the marketplace's: WAIT_SELLER_AGREE, SUCCESS, CLOSED, ...
    amount: Money
    modified: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RefundDecision:
    """The seller's answer to a refund the buyer asked for after delivery: agreed (the
    marketplace returns `amount` to the buyer) or refused, with the seller's `reason`."""

    refund_id: str
    tid: str
    agree: bool
    amount: Money
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RefundPage:
    refunds: list[MarketRefund]
    has_next: bool


@dataclass(frozen=True, slots=True)
class Push:
    """What a marketplace pushed: a paid trade or a refund (one of them)."""

    trade: Trade | None = None
    refund: MarketRefund | None = None


class SignatureError(Exception):
    """A pushed message whose signature, timestamp, app key or shape cannot be trusted."""


class MarketplaceUnavailable(Exception):
    """No usable answer (a timeout, a 5xx, a malformed body): the call may be tried again."""


class MarketplaceRefused(Exception):
    """The marketplace said no, for a reason of its own (`code`): trying again will not help."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


class MarketplaceAdapter(Protocol):
    code: str  # the adapter's kind, e.g. "open-platform"

    async def trades_since(self, start: datetime, end: datetime, page: int, page_size: int) -> TradePage:
        """Paid trades modified in [start, end), one page (1, 2, ...) of them."""
        ...

    async def trade(self, tid: str) -> Trade:
        """One trade in full (MarketplaceRefused if there is no such trade)."""
        ...

    async def ship(self, shipment: Shipment) -> Shipped: ...

    async def refunds_since(self, start: datetime, end: datetime, page: int, page_size: int) -> RefundPage: ...

    async def decide_refund(self, decision: RefundDecision) -> None:
        """Tell the marketplace the seller agrees to (or refuses) a refund. A decision it had
        recorded before (sent twice) counts as told; MarketplaceRefused if it will not take it."""
        ...

    def verify_push(self, params: Mapping[str, str], now: datetime) -> None:
        """Raise SignatureError unless the pushed message was signed by this marketplace recently."""
        ...

    def parse_push(self, params: Mapping[str, str]) -> Push:
        """What a verified push says; SignatureError if it is malformed."""
        ...

    async def close(self) -> None: ...
