"""Analytics: salesSummary, topProducts, channelPerformance. Operators see every channel,
a partner its own channel only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from domain.access import Role
from domain.analytics import AnalyticsInputError, Period
from models import Channel
from schema.analytics import ChannelPerformance, ProductRanking, SalesBucket, TimeBucket, TopProduct
from schema.context import Info
from schema.errors import BadUserInput, Forbidden
from schema.permissions import HasKey
from services.analytics import sales

MAX_TOP_PRODUCTS = 100


async def _channel(info: Info, code: str | None) -> Channel | None:
    """The channel the figures are for; None: every channel (operators only)."""
    principal = info.context.principal
    if not principal.is_admin:
        if principal.role is not Role.PARTNER:
            raise Forbidden("analytics are for operators and partners")
        if code is None or code != principal.channel:
            raise Forbidden("a partner reads its own channel's figures: give its code as `channel`", field="channel")
    if code is None:
        return None
    row = await info.context.loaders.channel_by_code.load(code)
    if row is None:
        raise BadUserInput(f"unknown channel {code!r}", field="channel")
    return row


def _period(start: datetime, end: datetime) -> Period:
    try:
        return Period.of(start, end)
    except AnalyticsInputError as error:
        raise BadUserInput(error.message, field=error.field) from None


@strawberry.type
class AnalyticsQuery:
    @strawberry.field(
        permission_classes=[HasKey],
        description="Orders placed per time bucket in [from, to), empty buckets included (at most 1,000).",
    )
    async def sales_summary(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        bucket: TimeBucket,  # type: ignore[valid-type]
        channel: str | None = None,
    ) -> list[SalesBucket]:
        row = await _channel(info, channel)
        period = _period(from_, to)
        try:
            async with info.context.db.read_sessions() as session:
                buckets = await sales.sales_summary(
                    session, period, bucket,
                    channel_id=row.id if row else None, currency=row.currency if row else None,
                )
        except AnalyticsInputError as error:
            raise BadUserInput(error.message, field=error.field) from None
        return [SalesBucket.of(b) for b in buckets]

    @strawberry.field(
        permission_classes=[HasKey],
        description="Products ranked by units (or revenue) in paid orders placed in [from, to).",
    )
    async def top_products(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        channel: str | None = None,
        first: int = 10,
        by: ProductRanking = ProductRanking.UNITS,
    ) -> list[TopProduct]:
        row = await _channel(info, channel)
        period = _period(from_, to)
        if not 1 <= first <= MAX_TOP_PRODUCTS:
            raise BadUserInput(f"first must be between 1 and {MAX_TOP_PRODUCTS}", field="first")
        async with info.context.db.read_sessions() as session:
            ranked = await sales.top_products(
                session, period, channel_id=row.id if row else None, limit=first,
                by_revenue=by is ProductRanking.REVENUE,
            )
        return [TopProduct.of(p) for p in ranked]

    @strawberry.field(
        permission_classes=[HasKey],
        description="Per channel, orders placed in [from, to): paid, revenue, delivered, conversion, risk rejections.",
    )
    async def channel_performance(
        self,
        info: Info,
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
        channel: str | None = None,
    ) -> list[ChannelPerformance]:
        row = await _channel(info, channel)
        period = _period(from_, to)
        async with info.context.db.read_sessions() as session:
            figures = await sales.channel_performance(session, period, channel_id=row.id if row else None)
        return [ChannelPerformance.of(f) for f in figures]
