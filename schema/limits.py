"""Types of purchase limits (限购) and hold limits."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import limits as domain

PurchaseLimitPeriod = strawberry.enum(
    domain.Period,
    name="PurchaseLimitPeriod",
    description="What a per-buyer limit counts over: a calendar DAY, WEEK (from Monday) or MONTH in "
    "Beijing time, or a SALE from its `startsAt` on.",
)


@strawberry.type(description="What one buyer may buy of a SKU on a channel (限购).")
class PurchaseLimit:
    channel: str
    per_order: int | None = strawberry.field(description="Units of the SKU in one order, at most; null: no cap.")
    per_buyer: int | None = strawberry.field(description="Units one buyer may buy in each period; null: no cap.")
    period: PurchaseLimitPeriod  # type: ignore[valid-type]
    starts_at: datetime | None = strawberry.field(description="SALE: purchases count from this moment.")

    @classmethod
    def of(cls, limit: domain.PurchaseLimit, channel: str) -> PurchaseLimit:
        return cls(
            channel=channel, per_order=limit.per_order, per_buyer=limit.per_buyer, period=limit.period,
            starts_at=limit.starts_at if limit.period is domain.Period.SALE else None,
        )


@strawberry.type(description="Units one buyer from the public may hold in unpaid orders at once.")
class HoldLimit:
    channel: str
    per_buyer: int | None = strawberry.field(description="Per phone, e-mail, device and account; null: no cap.")
    per_address: int | None = strawberry.field(description="Per client address; null: no cap.")
    own: bool = strawberry.field(description="The channel set caps of its own (else the gateway's defaults apply).")
