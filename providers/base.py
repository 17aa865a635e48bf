"""What the gateway needs from a payment provider (WeChat Pay, Alipay).

Each provider speaks its own protocol; an adapter turns it into these few calls, and the
gateway never branches on which provider it talks to outside the adapter. Money crosses the
boundary in fen (integers) both ways: an adapter converts to and from the provider's own
spelling (WeChat Pay counts fen; Alipay writes yuan as a decimal string) exactly.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol


class Provider(enum.Enum):
    WECHAT_PAY = "WECHAT_PAY"
    ALIPAY = "ALIPAY"


class Method(enum.Enum):
    JSAPI = "JSAPI"  # WeChat Pay inside WeChat (official-account H5, or a mini-program)
    H5 = "H5"  # WeChat Pay from a mobile browser outside WeChat
    NATIVE = "NATIVE"  # WeChat Pay by QR code
    PAGE = "PAGE"  # Alipay cashier page on a computer
    WAP = "WAP"  # Alipay from a mobile browser
    MINI_PROGRAM = "MINI_PROGRAM"  # a mini-program: WeChat JSAPI under its app id, Alipay trade create


METHODS: dict[Provider, frozenset[Method]] = {
    Provider.WECHAT_PAY: frozenset({Method.JSAPI, Method.H5, Method.NATIVE, Method.MINI_PROGRAM}),
    Provider.ALIPAY: frozenset({Method.PAGE, Method.WAP, Method.MINI_PROGRAM}),
}
NEEDS_PAYER = frozenset({Method.JSAPI, Method.MINI_PROGRAM})  # the buyer's openid / Alipay user id


@dataclass(frozen=True, slots=True)
class Account:
    """How one channel reaches one provider. `secrets` are opened from their sealed form only
    to build the adapter; they are never logged (see __repr__)."""

    id: int
    provider: Provider
    app_id: str  # WeChat: the mini-program's or official account's appid; Alipay: the app's app_id
    merchant_id: str  # WeChat: mchid; Alipay: the app_id again (an Alipay app is its own merchant)
    base_url: str  # WeChat: https://api.mch.weixin.qq.com; Alipay: https://openapi.alipay.com/gateway.do
    key_serial: str  # WeChat: the merchant certificate's serial number; Alipay: unused
    provider_key_id: str  # WeChat: the platform public key's id (PUB_KEY_ID_…); Alipay: unused
    provider_public_key: str  # PEM: WeChat Pay's platform key, Alipay's public key
    private_key: str = field(repr=False)  # PEM: the merchant's (app's) private key
    api_key: str = field(default="", repr=False)  # WeChat: the API v3 key (32 bytes); Alipay: unused


@dataclass(frozen=True, slots=True)
class Checkout:
    """One payment to start: our order and what the front end asked for."""

    order_number: str  # out_trade_no
    amount_fen: int
    currency: str
    description: str
    method: Method
    notify_url: str
    payer: str | None = None  # openid (WeChat) or buyer id (Alipay) for JSAPI / MINI_PROGRAM
    client_ip: str | None = None  # H5 needs the payer's address
    expires_at: datetime | None = None  # the provider stops taking payment then
    return_url: str | None = None  # Alipay page/WAP: where the buyer's browser goes back to


@dataclass(frozen=True, slots=True)
class Started:
    """What the front end needs to let the buyer pay (JSON), and the provider's handle on it
    (WeChat prepay_id; Alipay trade_no for a mini-program, else nothing until paid)."""

    client_params: dict[str, Any]
    handle: str | None = None


class TradeState(enum.Enum):
    PAID = "PAID"  # the money moved
    NOT_PAID = "NOT_PAID"  # waiting, closed or failed: nothing to apply
    REFUNDED = "REFUNDED"  # paid, then (partly) refunded


@dataclass(frozen=True, slots=True)
class PaymentNotice:
    """A verified, decoded payment notification (or the answer to a query)."""

    provider: Provider
    state: TradeState
    order_number: str  # out_trade_no
    transaction_id: str  # the provider's id of the payment: what makes it once only
    amount_fen: int  # what the payer paid, exactly
    currency: str
    app_id: str
    merchant_id: str
    paid_at: datetime | None = None


class RefundState(enum.Enum):
    SUCCEEDED = "SUCCEEDED"  # the money is back with the payer
    PROCESSING = "PROCESSING"  # accepted; a notification (or a query) says how it ends
    FAILED = "FAILED"  # closed or abnormal: an operator must pay it back another way


@dataclass(frozen=True, slots=True)
class RefundOrder:
    refund_number: str  # out_refund_no / out_request_no: our id of this refund, once only
    order_number: str
    transaction_id: str
    amount_fen: int  # this refund (a line's worth, or everything)
    total_fen: int  # the payment it returns part or all of
    currency: str
    reason: str
    notify_url: str


@dataclass(frozen=True, slots=True)
class RefundNotice:
    """A verified refund notification. `amount_fen`: this refund (WeChat Pay), or what the
    trade has had refunded in all (Alipay's refund_fee)."""

    provider: Provider
    state: RefundState
    refund_number: str
    order_number: str
    amount_fen: int
    merchant_id: str
    provider_refund_id: str = ""


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One line of a provider's daily statement: a payment (key: our order number) or a
    refund (key: our refund number), with what the provider says of it."""

    key: str
    kind: str  # PAYMENT or REFUND
    amount_fen: int
    status: str  # PAID; REFUNDED or PROCESSING for a refund
    transaction_id: str = ""


class ProviderError(Exception):
    """The provider refused a call or gave no answer we can trust; the message is for
    operators (no secrets, no buyer data)."""

    def __init__(self, message: str, *, code: str = "PROVIDER_ERROR", retryable: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class NotificationRejected(Exception):
    """A notification we cannot trust (signature, time, decryption) or read."""


@dataclass(frozen=True, slots=True)
class Reply:
    """How to answer a notification, in the provider's words."""

    status: int
    body: bytes
    media_type: str


class PaymentProvider(Protocol):
    account: Account

    async def create(self, checkout: Checkout) -> Started:
        """Start a payment; ProviderError if the provider refuses it."""
        ...

    def client_params(self, checkout: Checkout, handle: str) -> dict[str, Any]:
        """What the front end needs for a payment started before (signed afresh)."""
        ...

    def verify_notification(self, headers: Mapping[str, str], body: bytes, now: datetime) -> PaymentNotice | RefundNotice:
        """The notification (of a payment, or of a refund: both come to one address),
        verified and decoded; NotificationRejected otherwise."""
        ...

    async def query(self, order_number: str) -> PaymentNotice | None:
        """The payment as the provider sees it; None if it knows no such trade."""
        ...

    async def refund(self, refund: RefundOrder) -> RefundState:
        """Send a refund (full or part of the payment); ProviderError if refused."""
        ...

    async def refund_state(self, order_number: str, refund_number: str) -> RefundState | None:
        """How a refund sent before stands (a refund notification may never come); None if
        the provider knows no such refund."""
        ...

    async def statement(self, day: date) -> list[StatementLine]:
        """The provider's statement of the merchant's payments and refunds on `day` (China
        time), downloaded in the format it publishes; ProviderError if it cannot be had."""
        ...

    def reply(self, handled: bool, message: str = "", status: int = 400) -> Reply:
        """The answer the provider expects: it retries until told the notification was handled."""
        ...

    async def close(self) -> None: ...
