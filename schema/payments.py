"""Payment types: payments through a provider, and money owed back to a payer."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from models import Payment as PaymentRow
from models import Refund as RefundRow
from providers.base import Method, Provider
from schema.errors import UserError
from schema.money import Money
from schema.relay import encode_id

PaymentProvider = strawberry.enum(Provider, name="PaymentProvider")
PaymentMethod = strawberry.enum(Method, name="PaymentMethod", description=(
    "JSAPI: WeChat Pay inside WeChat; H5: WeChat Pay from a mobile browser; NATIVE: WeChat Pay by QR code; "
    "PAGE and WAP: Alipay's cashier on a computer or a phone; MINI_PROGRAM: a WeChat or Alipay mini-program."
))


@strawberry.enum
class PaymentStatus(enum.Enum):
    STARTED = "STARTED"
    PAID = "PAID"
    OWED_BACK = "OWED_BACK"


@strawberry.type(description="A payment started for an order through WeChat Pay or Alipay.")
class Payment:
    id: strawberry.ID
    provider: PaymentProvider  # type: ignore[valid-type]
    method: PaymentMethod  # type: ignore[valid-type]
    status: PaymentStatus
    amount: Money
    client_params: JSON | None = strawberry.field(description=(
        "What the front end passes on: JSAPI and MINI_PROGRAM (WeChat) the arguments of wx.requestPayment "
        "(appId, timeStamp, nonceStr, package, signType, paySign); H5 {h5Url}; NATIVE {codeUrl}; "
        "PAGE and WAP {url} to send the browser to; MINI_PROGRAM (Alipay) {tradeNO} for my.tradePay."
    ))

    @classmethod
    def from_model(cls, row: PaymentRow, client_params: dict[str, object] | None) -> Payment:
        return cls(id=encode_id("Payment", row.id), provider=Provider(row.provider), method=Method(row.method),
                   status=PaymentStatus(row.status), amount=Money.fen(row.amount_fen, row.currency),
                   client_params=client_params)


@strawberry.input
class CreatePaymentInput:
    order_id: strawberry.ID
    provider: PaymentProvider  # type: ignore[valid-type]
    method: PaymentMethod  # type: ignore[valid-type]
    open_id: str | None = strawberry.field(default=None, description=(
        "The buyer's openid under the channel's WeChat app id (JSAPI, MINI_PROGRAM), or Alipay user id."
    ))


@strawberry.type
class CreatePaymentPayload:
    payment: Payment | None
    user_errors: list[UserError]


@strawberry.type(description=(
    "Money owed back for an order: lines that could not be delivered, or a payment the order could "
    "not take (it had expired, was cancelled, rejected or held for review, or was paid with another payment)."
))
class Refund:
    id: strawberry.ID
    amount: Money
    status: str = strawberry.field(description=(
        "REQUESTED: recorded, to be paid back; PROCESSING: sent to the payment provider; SUCCEEDED: the "
        "provider paid it back; FAILED: the provider could not, an operator pays it back; CREDITED: returned "
        "to the channel's prepaid balance."
    ))
    reference: str | None = strawberry.field(description="The payment it returns.")
    reason: str
    created_at: datetime

    @classmethod
    def from_model(cls, row: RefundRow) -> Refund:
        return cls(
            id=encode_id("Refund", row.id), amount=Money.fen(row.amount_fen, row.currency),
            status=row.status, reference=row.reference, reason=row.reason, created_at=row.created_at,
        )
