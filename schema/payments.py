"""Payment types: payments through a provider, and money owed back to a payer."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from models import Payment as PaymentRow
from models import ProviderReconciliation as ProviderReconciliationRow
from models import ProviderReconciliationItem as ProviderReconciliationItemRow
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
        "to the channel's prepaid balance. A refund asked on a marketplace after delivery: REQUESTED, then "
        "AGREED (the marketplace returns the money), REFUSED, or CLOSED (withdrawn on the marketplace first)."
    ))
    reference: str | None = strawberry.field(description="The payment it returns (a marketplace refund: its refund id).")
    reason: str
    created_at: datetime

    @classmethod
    def from_model(cls, row: RefundRow) -> Refund:
        return cls(
            id=encode_id("Refund", row.id), amount=Money.fen(row.amount_fen, row.currency),
            status=row.status, reference=row.reference, reason=row.reason, created_at=row.created_at,
        )


@strawberry.type(description="A difference between a provider's statement and our records.")
class PaymentReconciliationItem:
    kind: str = strawberry.field(description="MISSING_ON_THEIR_SIDE, MISSING_ON_OUR_SIDE, AMOUNT_MISMATCH, STATUS_MISMATCH")
    reference: str = strawberry.field(description="Our order number (a payment) or refund number (a refund).")
    our_amount: Money | None
    their_amount: Money | None
    our_status: str | None
    their_status: str | None

    @classmethod
    def from_model(cls, row: ProviderReconciliationItemRow) -> PaymentReconciliationItem:
        return cls(kind=row.kind, reference=row.reference,
                   our_amount=Money.fen(row.our_amount_fen, "CNY") if row.our_amount_fen is not None else None,
                   their_amount=Money.fen(row.their_amount_fen, "CNY") if row.their_amount_fen is not None else None,
                   our_status=row.our_status, their_status=row.their_status)


@strawberry.type(description="A provider's daily statement compared with our payments and refunds of that day.")
class PaymentReconciliation:
    id: strawberry.ID
    provider: PaymentProvider  # type: ignore[valid-type]
    date: str = strawberry.field(description="The provider's day, YYYY-MM-DD (China time).")
    records: int
    matched: int
    missing_on_their_side: int
    missing_on_our_side: int
    amount_mismatches: int
    status_mismatches: int
    items: list[PaymentReconciliationItem]

    @classmethod
    def from_model(cls, row: ProviderReconciliationRow,
                   items: list[ProviderReconciliationItemRow]) -> PaymentReconciliation:
        return cls(id=encode_id("PaymentReconciliation", row.id), provider=Provider(row.provider), date=row.day,
                   records=row.records, matched=row.matched, missing_on_their_side=row.missing_on_their_side,
                   missing_on_our_side=row.missing_on_our_side, amount_mismatches=row.amount_mismatches,
                   status_mismatches=row.status_mismatches,
                   items=[PaymentReconciliationItem.from_model(item) for item in items])


@strawberry.type
class ReconcilePaymentsPayload:
    report: PaymentReconciliation | None
    user_errors: list[UserError]
