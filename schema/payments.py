"""Payment types: money owed back to a payer."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import Refund as RefundRow
from schema.money import Money
from schema.relay import encode_id


@strawberry.type(description=(
    "Money owed back for an order: lines that could not be delivered, or a payment the order could "
    "not take (it had expired, was cancelled, rejected or held for review, or was paid with another payment)."
))
class Refund:
    id: strawberry.ID
    amount: Money
    status: str = strawberry.field(description=(
        "REQUESTED: recorded for the payment provider, to be paid back; CREDITED: returned to the "
        "channel's prepaid balance."
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
