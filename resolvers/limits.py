"""Purchase limits (限购) and hold limits: operators' mutations."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import limits as rules
from domain.limits import LimitError
from models import Sku as SkuRow
from resolvers.access import channel_for_operator
from schema.context import Info
from schema.errors import UserError
from schema.limits import HoldLimit, PurchaseLimit, PurchaseLimitPeriod
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk
from services.core.events import CATALOG_CHANGED
from services.orders import limits


@strawberry.input
class SetPurchaseLimitInput:
    channel: str
    sku_id: strawberry.ID
    per_order: int | None = strawberry.field(default=None, description="Units of the SKU in one order, at most.")
    per_buyer: int | None = strawberry.field(default=None, description="Units one buyer may buy in each period.")
    period: PurchaseLimitPeriod = strawberry.field(  # type: ignore[valid-type]
        default=rules.Period.DAY, description="What `perBuyer` counts over."
    )
    starts_at: datetime | None = strawberry.field(
        default=None, description="SALE: count from this moment (default: the running sale's start, or now).",
    )


@strawberry.type
class SetPurchaseLimitPayload:
    purchase_limit: PurchaseLimit | None = strawberry.field(description="The limit now; null: none.")
    user_errors: list[UserError]


@strawberry.input
class SetHoldLimitInput:
    channel: str
    per_buyer: int | None = strawberry.field(
        default=None, description="Per phone, e-mail, device and account; 0: no cap; null: the gateway's default.",
    )
    per_address: int | None = strawberry.field(
        default=None, description="Per client address; 0: no cap; null: the gateway's default.",
    )


@strawberry.type
class SetHoldLimitPayload:
    hold_limit: HoldLimit | None
    user_errors: list[UserError]


def _invalid(field: str, message: str) -> UserError:
    return UserError(field=field, message=message, code="INVALID_LIMIT")


@strawberry.type
class LimitsMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "Limit what one buyer may buy of a SKU on a channel (限购): per order and per period. "
        "Both caps null removes the limit."
    ))
    async def set_purchase_limit(self, info: Info, input: SetPurchaseLimitInput) -> SetPurchaseLimitPayload:
        sku_id = decode_pk(input.sku_id, "Sku", field="skuId")
        if input.starts_at is not None and input.starts_at.tzinfo is None:
            error = UserError(field="startsAt", message="give the time zone, e.g. 2026-11-11T00:00:00+08:00", code="INVALID_TIME")
            return SetPurchaseLimitPayload(purchase_limit=None, user_errors=[error])
        wanted = rules.PurchaseLimit(input.per_order, input.per_buyer, input.period, input.starts_at)
        async with info.context.uow() as uow:
            channel = await channel_for_operator(uow.session, input.channel)
            if await uow.session.get(SkuRow, sku_id) is None:
                error = UserError(field="skuId", message="no such SKU", code="NOT_FOUND")
                return SetPurchaseLimitPayload(purchase_limit=None, user_errors=[error])
            try:
                limit = await limits.set_purchase_limit(
                    uow.session, channel.id, sku_id, wanted, actor=info.context.principal.actor, now=info.context.now,
                )
            except LimitError as error:
                await uow.rollback()
                return SetPurchaseLimitPayload(purchase_limit=None, user_errors=[_invalid(error.field, error.message)])
            uow.publish(CATALOG_CHANGED, b"purchase-limit")
        return SetPurchaseLimitPayload(
            purchase_limit=PurchaseLimit.of(limit, channel.code) if limit is not None else None, user_errors=[]
        )

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "Set a channel's own caps on units one buyer from the public may hold in unpaid orders at once."
    ))
    async def set_hold_limit(self, info: Info, input: SetHoldLimitInput) -> SetHoldLimitPayload:
        for field, value in (("perBuyer", input.per_buyer), ("perAddress", input.per_address)):
            if value is not None and not 0 <= value <= rules.MAX_LIMIT:
                error = _invalid(field, f"a cap is 0 (none) to {rules.MAX_LIMIT:,} units, or null for the default")
                return SetHoldLimitPayload(hold_limit=None, user_errors=[error])
        own = rules.HoldLimit(input.per_buyer, input.per_address)
        async with info.context.uow() as uow:
            channel = await channel_for_operator(uow.session, input.channel)
            await limits.set_hold_limit(uow.session, channel.id, own, actor=info.context.principal.actor, now=info.context.now)
            uow.publish(CATALOG_CHANGED, b"hold-limit")  # orders' copies of the terms (services/orders/terms.py)
        settings = info.context.settings
        caps = rules.HoldLimit.of(settings.hold_limit, settings.hold_limit_per_ip).over(own)
        custom = own.per_buyer is not None or own.per_address is not None
        hold = HoldLimit(channel=channel.code, per_buyer=caps.per_buyer, per_address=caps.per_address, own=custom)
        return SetHoldLimitPayload(hold_limit=hold, user_errors=[])
