"""Campaigns and coupons: operators create and read them; buyers only redeem (placeOrder)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.campaigns import Bearer, CampaignError
from models import Campaign as CampaignRow
from models import CampaignSku, Channel
from resolvers.access import channel_for_operator
from schema.campaigns import Campaign, CampaignBearer
from schema.context import Info
from schema.errors import UserError
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk, page_size
from services.campaigns import admin
from services.campaigns.figures import campaign_figures

MAX_CODES_PER_REQUEST = 10_000


@strawberry.input
class CreateCampaignInput:
    name: str
    channel: str
    sku_ids: list[strawberry.ID]
    code: str | None = strawberry.field(default=None, description=(
        "One public code for everyone (4 to 32 letters and digits); leave out to generate single-use codes."
    ))
    amount_off: Decimal | None = strawberry.field(default=None, description="An amount off the campaign's lines together.")
    percent_off: int | None = strawberry.field(default=None, description="A percentage off the campaign's lines (1-100).")
    max_discount: Decimal | None = strawberry.field(default=None, description="The most a percentage takes off one order.")
    price: Decimal | None = strawberry.field(default=None, description="A fixed price per unit of the campaign's SKUs.")
    max_redemptions: int | None = None
    per_buyer_limit: int | None = strawberry.field(default=None, description=(
        "Redemptions per buyer: per phone, e-mail, device and account, each in its canonical form."
    ))
    budget: Decimal | None = strawberry.field(default=None, description="The most all redemptions may take off together.")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    subsidised: bool = strawberry.field(default=False, description="May sell below a SKU's price floor.")
    bearer: CampaignBearer = strawberry.field(  # type: ignore[valid-type]
        default=Bearer.PLATFORM, description="Who pays for the discounts."
    )


@strawberry.type
class CreateCampaignPayload:
    campaign: Campaign | None
    user_errors: list[UserError]


@strawberry.type
class EndCampaignPayload:
    campaign: Campaign | None
    user_errors: list[UserError]


@strawberry.type
class GenerateCouponCodesPayload:
    codes: list[str] = strawberry.field(description="The new codes: shown here once, stored only as digests.")
    user_errors: list[UserError]


def _invalid(error: CampaignError) -> UserError:
    return UserError(field=error.field, message=error.message, code="INVALID_CAMPAIGN")


async def _read(session: AsyncSession, rows: list[CampaignRow]) -> list[Campaign]:
    ids = [row.id for row in rows]
    channels = {
        row.id: row for row in await session.scalars(select(Channel).where(Channel.id.in_({r.channel_id for r in rows})))
    }
    skus: dict[int, list[int]] = {}
    for campaign_id, sku_id in await session.execute(
        select(CampaignSku.campaign_id, CampaignSku.sku_id).where(CampaignSku.campaign_id.in_(ids))
        .order_by(CampaignSku.sku_id)
    ):
        skus.setdefault(campaign_id, []).append(sku_id)
    figures = await campaign_figures(session, ids)
    return [
        Campaign.from_model(row, channels[row.channel_id].code, channels[row.channel_id].currency,
                            skus.get(row.id, []), figures[row.id])
        for row in rows
    ]


@strawberry.type
class CampaignQuery:
    @strawberry.field(permission_classes=ADMIN_ONLY, description="A campaign with its figures (operators).")
    async def campaign(self, info: Info, id: strawberry.ID) -> Campaign | None:
        pk = decode_pk(id, "Campaign")
        async with info.context.db.read_sessions() as session:
            row = await session.get(CampaignRow, pk)
            return (await _read(session, [row]))[0] if row is not None else None

    @strawberry.field(permission_classes=ADMIN_ONLY, description="Campaigns, newest first, with their figures (operators).")
    async def campaigns(self, info: Info, channel: str | None = None, first: int | None = 50) -> list[Campaign]:
        first = page_size(first, default=50, maximum=200)
        async with info.context.db.read_sessions() as session:
            query = select(CampaignRow).order_by(CampaignRow.id.desc()).limit(first)
            if channel is not None:
                query = query.where(CampaignRow.channel_id == (await channel_for_operator(session, channel)).id)
            return await _read(session, list(await session.scalars(query)))


@strawberry.type
class CampaignMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Create a campaign (operators).")
    async def create_campaign(self, info: Info, input: CreateCampaignInput) -> CreateCampaignPayload:
        sku_ids = [decode_pk(sku, "Sku", field=f"skuIds.{i}") for i, sku in enumerate(input.sku_ids)]
        async with info.context.uow() as uow:
            channel = await channel_for_operator(uow.session, input.channel)
            new = admin.NewCampaign(
                name=input.name, channel=channel, sku_ids=sku_ids, code=input.code, amount_off=input.amount_off,
                percent_off=input.percent_off, max_discount=input.max_discount, price=input.price,
                max_redemptions=input.max_redemptions, per_buyer_limit=input.per_buyer_limit, budget=input.budget,
                starts_at=input.starts_at, ends_at=input.ends_at, subsidised=input.subsidised, bearer=input.bearer,
            )
            try:
                row = await admin.create_campaign(uow.session, new, actor=info.context.principal.actor, now=info.context.now)
            except CampaignError as error:
                await uow.rollback()
                return CreateCampaignPayload(campaign=None, user_errors=[_invalid(error)])
            campaign = (await _read(uow.session, [row]))[0]
        return CreateCampaignPayload(campaign=campaign, user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "End a campaign now (operators): no order redeems it from then on; orders that did keep their discount."
    ))
    async def end_campaign(self, info: Info, id: strawberry.ID) -> EndCampaignPayload:
        pk = decode_pk(id, "Campaign")
        async with info.context.uow() as uow:
            row = await admin.end_campaign(uow.session, pk)
            if row is None:
                return EndCampaignPayload(campaign=None, user_errors=[
                    UserError(field="id", message="no such campaign", code="NOT_FOUND"),
                ])
            campaign = (await _read(uow.session, [row]))[0]
        return EndCampaignPayload(campaign=campaign, user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        f"Generate single-use codes of a campaign, up to {MAX_CODES_PER_REQUEST:,} at a time (operators). "
        "They appear in this answer only; `quanyi coupons generate` writes larger batches to a CSV file."
    ))
    async def generate_coupon_codes(self, info: Info, campaign_id: strawberry.ID, count: int) -> GenerateCouponCodesPayload:
        pk = decode_pk(campaign_id, "Campaign", field="campaignId")
        if not 1 <= count <= MAX_CODES_PER_REQUEST:
            error = UserError(field="count", message=f"1 to {MAX_CODES_PER_REQUEST:,} codes at a time", code="INVALID_CAMPAIGN")
            return GenerateCouponCodesPayload(codes=[], user_errors=[error])
        async with info.context.uow() as uow:
            try:
                codes = await admin.generate_codes(uow.session, pk, count, now=info.context.now)
            except CampaignError as error:
                await uow.rollback()
                return GenerateCouponCodesPayload(codes=[], user_errors=[_invalid(error)])
        return GenerateCouponCodesPayload(codes=codes, user_errors=[])
