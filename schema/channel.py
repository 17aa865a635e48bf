"""Channel types, and the channel scope that catalog types are priced for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import strawberry

from domain.access import may_read_channel_private
from models import channel as rows
from domain.limits import HoldLimit as Hold
from schema.context import Info
from schema.limits import HoldLimit
from schema.money import Money
from schema.relay import Node, encode_id
from services.settlement import prepaid

ChannelKind = strawberry.enum(rows.ChannelKind, description="Where a channel sells.")
SettlementCycle = strawberry.enum(rows.SettlementCycle)


@dataclass(frozen=True, slots=True)
class ChannelScope:
    """The channel a query reads the catalog for; `None` code: no channel (node look-ups)."""

    code: str | None
    channel_id: int | None = None
    currency: str = "CNY"

    @classmethod
    def of(cls, row: rows.Channel) -> ChannelScope:
        return cls(code=row.code, channel_id=row.id, currency=row.currency)


NO_CHANNEL = ChannelScope(code=None)


@strawberry.type(description="A sales channel: own site, mini-program, H5, marketplace, live, B2B.")
class Channel(Node):
    code: str
    name: str
    kind: ChannelKind  # type: ignore[valid-type]
    currency: str
    settlement_cycle: SettlementCycle  # type: ignore[valid-type]
    active: bool
    public: bool = strawberry.field(description="Anonymous catalog reads and guest orders allowed.")
    settlement_time_zone: str = strawberry.field(description="The IANA zone its settlement periods follow.")
    version: int = strawberry.field(description="Name it when updating: a stale version is a CONFLICT.")
    archived_at: datetime | None
    _row: strawberry.Private[rows.Channel]

    @classmethod
    def from_model(cls, row: rows.Channel) -> Channel:
        return cls(
            id=encode_id("Channel", row.id),
            code=row.code,
            name=row.name,
            kind=row.kind,
            currency=row.currency,
            settlement_cycle=row.settlement_cycle,
            active=row.active,
            public=row.public,
            settlement_time_zone=row.settlement_time_zone,
            version=row.version,
            archived_at=row.archived_at,
            _row=row,
        )

    @strawberry.field(description="Commission as a fraction (0.05 = 5%); operators and the channel's partner.")
    def commission_rate(self, info: Info) -> Decimal | None:
        if not may_read_channel_private(info.context.principal, self.code):
            return None
        return Decimal(self._row.commission_bp).scaleb(-4).normalize()

    @strawberry.field(description="A B2B channel's prepaid balance; operators and the channel's partner.")
    async def prepaid_balance(self, info: Info) -> Money | None:
        if not prepaid.keeps_balance(self._row) or not may_read_channel_private(info.context.principal, self.code):
            return None
        async with info.context.db.fresh_sessions() as session:
            fen = await prepaid.balance_of(session, self._row.id)
        return Money.fen(fen, self.currency)

    @strawberry.field(description=(
        "Units one buyer from the public may hold in unpaid orders at once on this channel; operators only."
    ))
    async def hold_limit(self, info: Info) -> HoldLimit | None:
        if not info.context.principal.is_admin:
            return None
        settings = info.context.settings
        own = await info.context.loaders.hold_limit_by_channel.load(self._row.id)
        caps = Hold.of(settings.hold_limit, settings.hold_limit_per_ip).over(own)
        return HoldLimit(channel=self.code, per_buyer=caps.per_buyer, per_address=caps.per_address, own=own is not None)
