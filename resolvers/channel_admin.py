"""Operators' mutations of channels and of what each channel lists."""

from __future__ import annotations

import strawberry
from strawberry import UNSET

from models import Channel as ChannelRow
from models import Product as ProductRow
from resolvers.catalog_admin import ArchiveInput
from resolvers.catalog_commands import LISTING_FIELDS, UPDATE_FIELDS, fresh, given, run
from schema.amount import Rate
from schema.catalog import Product, ProductListing
from schema.channel import NO_CHANNEL, Channel, ChannelKind, SettlementCycle
from schema.context import Info
from schema.errors import UserError
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk
from services.catalog import commands
from services.catalog.archive import archive
from services.catalog.listings import set_listing


@strawberry.input(description="A sales channel. Public channels take anonymous catalog reads and guest orders.")
class CreateChannelInput:
    code: str
    name: str
    currency: str
    kind: ChannelKind = ChannelKind.OWN_SITE  # type: ignore[valid-type]
    commission_rate: Rate | None = strawberry.field(default=None, description="A fraction: \"0.05\" is 5%.")  # type: ignore[valid-type]
    public: bool = False
    settlement_cycle: SettlementCycle = SettlementCycle.MONTHLY  # type: ignore[valid-type]
    settlement_time_zone: str = strawberry.field(default="Asia/Shanghai", description="An IANA zone.")
    active: bool = True


@strawberry.input(description="Fields to change; those left out stay as they are. The currency stays.")
class UpdateChannelInput:
    id: strawberry.ID
    version: int
    name: str | None = UNSET
    kind: ChannelKind | None = UNSET  # type: ignore[valid-type]
    commission_rate: Rate | None = UNSET  # type: ignore[valid-type]
    public: bool | None = UNSET
    settlement_cycle: SettlementCycle | None = UNSET  # type: ignore[valid-type]
    settlement_time_zone: str | None = UNSET
    active: bool | None = UNSET


@strawberry.input(description="List a product on a channel (at `position`, default last), or unlist it.")
class SetProductListingInput:
    channel: str
    product_id: strawberry.ID
    listed: bool
    position: int | None = None


@strawberry.type
class ChannelPayload:
    channel: Channel | None
    user_errors: list[UserError]


@strawberry.type
class ProductListingPayload:
    listing: ProductListing | None = strawberry.field(description="Where it is listed now; null once unlisted.")
    product: Product | None
    user_errors: list[UserError]


async def _channel(info: Info, pk: int | None, errors: list[UserError]) -> ChannelPayload:
    row = await fresh(info, ChannelRow, pk) if pk is not None else None
    return ChannelPayload(channel=Channel.from_model(row) if row else None, user_errors=errors)


def _enum(value: object) -> object:
    return value.value if value is not None and value is not UNSET and hasattr(value, "value") else value


@strawberry.type
class ChannelAdminMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Add a sales channel; it lists no product yet.")
    async def create_channel(self, info: Info, input: CreateChannelInput) -> ChannelPayload:
        record = {
            "type": "channel", "code": input.code, "name": input.name, "kind": _enum(input.kind),
            "currency": input.currency, "commissionRate": input.commission_rate,
            "settlementCycle": _enum(input.settlement_cycle), "settlementTimeZone": input.settlement_time_zone,
            "public": input.public, "active": input.active,
        }
        who = {"actor": info.context.principal.actor, "at": info.context.now}
        saved, errors = await run(info, lambda uow: commands.create(uow, record, **who))  # type: ignore[arg-type]
        return await _channel(info, saved.id if saved else None, errors)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Change a channel: at once in every process.")
    async def update_channel(self, info: Info, input: UpdateChannelInput) -> ChannelPayload:
        pk = decode_pk(input.id, "Channel")
        changes = given(
            name=input.name, kind=_enum(input.kind), commissionRate=input.commission_rate, public=input.public,
            settlementCycle=_enum(input.settlement_cycle), settlementTimeZone=input.settlement_time_zone,
            active=input.active,
        )
        who = {"actor": info.context.principal.actor, "at": info.context.now}
        saved, errors = await run(
            info, lambda uow: commands.update(uow, "channel", pk, input.version, changes, **who), UPDATE_FIELDS  # type: ignore[arg-type]
        )
        return await _channel(info, saved.id if saved else None, errors)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Close a channel for good; its orders and statements stay.")
    async def archive_channel(self, info: Info, input: ArchiveInput) -> ChannelPayload:
        pk = decode_pk(input.id, "Channel")
        who = {"actor": info.context.principal.actor, "at": info.context.now}
        done, errors = await run(info, lambda uow: archive(uow, "channel", pk, input.version, **who))  # type: ignore[arg-type]
        return await _channel(info, done, errors)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="List a product on a channel, or take it off.")
    async def set_product_listing(self, info: Info, input: SetProductListingInput) -> ProductListingPayload:
        product_id = decode_pk(input.product_id, "Product", field="productId")
        who = {"actor": info.context.principal.actor, "at": info.context.now}
        position, errors = await run(
            info,
            lambda uow: set_listing(uow, input.channel, product_id, listed=input.listed, position=input.position, **who),  # type: ignore[arg-type]
            LISTING_FIELDS,
        )
        if errors:
            return ProductListingPayload(listing=None, product=None, user_errors=errors)
        row = await fresh(info, ProductRow, product_id)
        listing = ProductListing(channel=input.channel.strip().lower(), position=position) if position is not None else None
        return ProductListingPayload(listing=listing, product=Product.from_model(row, NO_CHANNEL), user_errors=[])
