"""Types of sale events (预约抢购): the sale, and the moments pushed to its subscribers."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import sales as domain
from schema.context import Info
from schema.live import SharedEvent
from schema.relay import encode_id
from services.live.sale_feed import SaleMoment
from services.sales.schedule import registrations as registration_count

SaleState = strawberry.enum(
    domain.SaleState,
    name="SaleState",
    description="Where a sale stands: SCHEDULED (before its start, registration not open), REGISTRATION_OPEN, "
    "STARTED, ENDED, or CANCELLED.",
)


@strawberry.type(description="A SKU's scheduled sale on a channel (预约抢购).")
class Sale:
    id: strawberry.ID
    channel: str
    sku_id: strawberry.ID
    starts_at: datetime
    ends_at: datetime | None = strawberry.field(description="Null: the sale runs until cancelled.")
    registration_opens_at: datetime | None = strawberry.field(
        description="With a registration window, only buyers who registered may buy from the start.",
    )
    registration_closes_at: datetime | None
    state: SaleState  # type: ignore[valid-type]
    seconds_to_start: int = strawberry.field(description="Whole seconds until the start, rounded up; 0 from then on.")
    pk: strawberry.Private[int]

    @strawberry.field(description="Buyers registered for the sale.")
    async def registrations(self, info: Info) -> int:
        async with info.context.db.fresh_sessions() as session:
            return await registration_count(session, self.pk)

    @classmethod
    def of(cls, sale: domain.Sale, channel: str, now: datetime) -> Sale:
        return cls(
            id=encode_id("Sale", sale.id), channel=channel, sku_id=encode_id("Sku", sale.sku_id),
            starts_at=sale.starts_at, ends_at=sale.ends_at, registration_opens_at=sale.registration_opens_at,
            registration_closes_at=sale.registration_closes_at, state=sale.state(now),
            seconds_to_start=sale.seconds_to_start(now), pk=sale.id,
        )


@strawberry.type(description="A sale's state at a moment: pushed on subscribing, at each countdown tick and change.")
class SaleEventUpdate(SharedEvent):
    sale_id: strawberry.ID
    sku_id: strawberry.ID
    channel: str
    state: SaleState  # type: ignore[valid-type]
    seconds_to_start: int
    starts_at: datetime
    ends_at: datetime | None
    at: datetime

    @classmethod
    def of(cls, moment: SaleMoment) -> SaleEventUpdate:
        sale = moment.sale
        return cls(
            sale_id=encode_id("Sale", sale.id), sku_id=encode_id("Sku", sale.sku_id), channel=moment.channel,
            state=moment.state, seconds_to_start=moment.seconds_to_start, starts_at=sale.starts_at,
            ends_at=sale.ends_at, at=moment.at,
        )
