"""Channel prices, price control and quotas: admin mutations and the price audit trail."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from sqlalchemy import select

from domain.access import may_read_channel_private
from domain.money import MoneyError
from domain.pricing import PriceViolation
from models import Channel as ChannelRow
from models import PriceChange as PriceChangeRow
from models import Sku as SkuRow
from resolvers.access import channel_for_operator
from schema.context import Info
from schema.errors import Forbidden, UserError
from schema.money import Money
from schema.permissions import ADMIN_ONLY, HasKey
from schema.pricing import ChannelPrice, ChannelQuota, PriceChange, PriceControl
from schema.relay import PageInfo, decode_cursor, decode_pk, encode_cursor, page_info, page_size
from services.core.events import CATALOG_CHANGED, stock_event
from services.inventory import quotas
from services.pricing import prices as pricing


def _violation(violation: PriceViolation, field: str = "amount") -> UserError:
    messages = {
        PriceViolation.BELOW_PRICE_FLOOR: "the price is below the SKU's price floor",
        PriceViolation.ABOVE_PRICE_CEILING: "the price is above the SKU's price ceiling",
        PriceViolation.NOT_POSITIVE: "a price must be more than zero",
        PriceViolation.CURRENCY_MISMATCH: "the price control is set in another currency",
        PriceViolation.EMPTY_WINDOW: "the window must end after it starts",
        PriceViolation.INVERTED_BOUNDS: "the floor must not be above the ceiling",
    }
    field = "endsAt" if violation is PriceViolation.EMPTY_WINDOW else field
    return UserError(field=field, message=messages[violation], code=violation.value)


def _aware(moment: datetime | None, field: str) -> UserError | None:
    if moment is not None and moment.tzinfo is None:
        return UserError(field=field, message="give the time zone, e.g. 2026-11-11T00:00:00+08:00", code="INVALID_TIME")
    return None


@strawberry.input
class SetChannelPriceInput:
    channel: str
    sku_id: strawberry.ID
    amount: Decimal = strawberry.field(description="The unit price as a decimal string, e.g. \"88.00\".")
    starts_at: datetime | None = strawberry.field(default=None, description="Opens a promotion window.")
    ends_at: datetime | None = strawberry.field(default=None, description="Closes it (exclusive).")


@strawberry.type
class SetChannelPricePayload:
    channel_price: ChannelPrice | None
    user_errors: list[UserError]


@strawberry.input
class PriceTierInput:
    min_quantity: int
    amount: Decimal


@strawberry.input
class SetPriceTiersInput:
    channel: str
    sku_id: strawberry.ID
    tiers: list[PriceTierInput] = strawberry.field(description="Replaces the channel's tiers; [] removes them.")


@strawberry.type
class SetPriceTiersPayload:
    user_errors: list[UserError]


@strawberry.input
class SetPriceControlInput:
    sku_id: strawberry.ID
    floor: Decimal | None = None
    ceiling: Decimal | None = None


@strawberry.type
class SetPriceControlPayload:
    price_control: PriceControl | None
    user_errors: list[UserError]


@strawberry.input
class SetChannelQuotaInput:
    channel: str
    sku_id: strawberry.ID
    quota: int | None = strawberry.field(description="Units the channel may sell; null removes the cap.")


@strawberry.type
class SetChannelQuotaPayload:
    quota: ChannelQuota | None
    user_errors: list[UserError]


@strawberry.type
class PricingMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Set a channel's price or add a promotion window (控价 applies).")
    async def set_channel_price(self, info: Info, input: SetChannelPriceInput) -> SetChannelPricePayload:
        sku_id = decode_pk(input.sku_id, "Sku", field="skuId")
        invalid = _aware(input.starts_at, "startsAt") or _aware(input.ends_at, "endsAt")
        if invalid:
            return SetChannelPricePayload(channel_price=None, user_errors=[invalid])
        async with info.context.uow() as uow:
            channel = await channel_for_operator(uow.session, input.channel)
            sku = await uow.session.get(SkuRow, sku_id)
            if sku is None:
                return SetChannelPricePayload(channel_price=None, user_errors=[_not_found("skuId")])
            request = pricing.PriceChangeRequest(channel.id, sku_id, input.amount, input.starts_at, input.ends_at)
            try:
                outcome = await pricing.set_channel_price(uow.session, request, actor=info.context.principal.actor)
            except MoneyError as error:
                return SetChannelPricePayload(channel_price=None, user_errors=[_bad_amount(error)])
            if isinstance(outcome, PriceViolation):
                return SetChannelPricePayload(channel_price=None, user_errors=[_violation(outcome)])
            uow.publish(CATALOG_CHANGED, b"price")
            return SetChannelPricePayload(
                channel_price=ChannelPrice.from_model(outcome, channel.code, sku.currency), user_errors=[]
            )

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Replace a channel's B2B quantity tiers for a SKU.")
    async def set_price_tiers(self, info: Info, input: SetPriceTiersInput) -> SetPriceTiersPayload:
        sku_id = decode_pk(input.sku_id, "Sku", field="skuId")
        minimums = [tier.min_quantity for tier in input.tiers]
        if any(m < 2 for m in minimums) or len(set(minimums)) != len(minimums):
            error = UserError(field="tiers", message="tiers start at 2 units or more, each minimum once", code="INVALID_TIERS")
            return SetPriceTiersPayload(user_errors=[error])
        async with info.context.uow() as uow:
            channel = await channel_for_operator(uow.session, input.channel)
            tiers = [(tier.min_quantity, tier.amount) for tier in input.tiers]
            try:
                violation = await pricing.set_price_tiers(
                    uow.session, channel.id, sku_id, tiers, actor=info.context.principal.actor
                )
            except LookupError:
                return SetPriceTiersPayload(user_errors=[_not_found("skuId")])
            except MoneyError as error:
                return SetPriceTiersPayload(user_errors=[_bad_amount(error, "tiers")])
            if violation is not None:
                await uow.rollback()
                return SetPriceTiersPayload(user_errors=[_violation(violation, "tiers")])
            uow.publish(CATALOG_CHANGED, b"tiers")
        return SetPriceTiersPayload(user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Set a SKU's price floor and ceiling (控价).")
    async def set_price_control(self, info: Info, input: SetPriceControlInput) -> SetPriceControlPayload:
        sku_id = decode_pk(input.sku_id, "Sku", field="skuId")
        async with info.context.uow() as uow:
            sku = await uow.session.get(SkuRow, sku_id, with_for_update=True)
            if sku is None:
                return SetPriceControlPayload(price_control=None, user_errors=[_not_found("skuId")])
            try:
                outcome = pricing.set_price_control(sku, input.floor, input.ceiling)
            except MoneyError as error:
                return SetPriceControlPayload(price_control=None, user_errors=[_bad_amount(error, "floor")])
            if outcome is not None:
                await uow.rollback()
                return SetPriceControlPayload(price_control=None, user_errors=[_violation(outcome, "floor")])
            uow.publish(CATALOG_CHANGED, b"price-control")
            bounds = pricing.bounds_of(sku)
            control = PriceControl(
                floor=Money.of(bounds.floor) if bounds.floor else None,
                ceiling=Money.of(bounds.ceiling) if bounds.ceiling else None,
            )
        return SetPriceControlPayload(price_control=control, user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Cap what one channel may sell of a SKU.")
    async def set_channel_quota(self, info: Info, input: SetChannelQuotaInput) -> SetChannelQuotaPayload:
        sku_id = decode_pk(input.sku_id, "Sku", field="skuId")
        if input.quota is not None and input.quota < 0:
            error = UserError(field="quota", message="a quota cannot be negative", code="INVALID_QUOTA")
            return SetChannelQuotaPayload(quota=None, user_errors=[error])
        async with info.context.uow() as uow:
            channel = await channel_for_operator(uow.session, input.channel)
            if await uow.session.get(SkuRow, sku_id) is None:
                return SetChannelQuotaPayload(quota=None, user_errors=[_not_found("skuId")])
            quota = await quotas.set_quota(
                uow.session, channel.id, sku_id, input.quota, info.context.settings.stock_slots
            )
            stock_event(uow, [sku_id])
        if quota is None:
            return SetChannelQuotaPayload(quota=None, user_errors=[])
        return SetChannelQuotaPayload(
            quota=ChannelQuota(channel=channel.code, quota=quota.quota, used=quota.used, remaining=quota.remaining),
            user_errors=[],
        )


def _not_found(field: str) -> UserError:
    return UserError(field=field, message="no such SKU", code="NOT_FOUND")


def _bad_amount(error: MoneyError, field: str = "amount") -> UserError:
    return UserError(field=field, message=str(error), code="INVALID_AMOUNT")


@strawberry.type
class PriceChangeEdge:
    cursor: str
    node: PriceChange


@strawberry.type
class PriceChangeConnection:
    edges: list[PriceChangeEdge]
    page_info: PageInfo


@strawberry.type
class PricingQuery:
    @strawberry.field(permission_classes=[HasKey], description="Price changes, newest first: operators see all, a partner its own channel's.")
    async def price_changes(
        self,
        info: Info,
        channel: str | None = None,
        sku_id: strawberry.ID | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> PriceChangeConnection:
        principal = info.context.principal
        if not principal.is_admin:
            if principal.channel is None or not may_read_channel_private(principal, principal.channel):
                raise Forbidden("price changes are for operators and partners")
            if channel is not None and not may_read_channel_private(principal, channel):
                raise Forbidden("a partner reads its own channel's price changes only", field="channel")
            channel = principal.channel
        limit = page_size(first, default=20, maximum=info.context.settings.limits.max_page_size)
        query = (
            select(PriceChangeRow, ChannelRow.code, SkuRow.code, SkuRow.currency)
            .join(ChannelRow, ChannelRow.id == PriceChangeRow.channel_id)
            .join(SkuRow, SkuRow.id == PriceChangeRow.sku_id)
        )
        if channel is not None:
            query = query.where(ChannelRow.code == channel)
        if sku_id is not None:
            query = query.where(PriceChangeRow.sku_id == decode_pk(sku_id, "Sku", field="skuId"))
        if after:
            query = query.where(PriceChangeRow.id < decode_cursor(after, "PriceChange"))
        async with info.context.db.read_sessions() as session:
            rows = (await session.execute(query.order_by(PriceChangeRow.id.desc()).limit(limit + 1))).all()
        edges = [
            PriceChangeEdge(cursor=encode_cursor("PriceChange", row.id), node=PriceChange.from_model(row, code, sku_code, currency))
            for row, code, sku_code, currency in rows[:limit]
        ]
        return PriceChangeConnection(
            edges=edges,
            page_info=page_info([edge.cursor for edge in edges], more=len(rows) > limit, after=after),
        )
