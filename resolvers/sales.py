"""Sale events (预约抢购): operators schedule and cancel, buyers register, anyone reads the schedule."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.access import Role
from domain.sales import SaleError
from resolvers.access import channel_for_operator, readable_channel
from resolvers.orders import BuyerInput
from schema.context import Info
from schema.errors import Forbidden, UserError
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk
from schema.sales import Sale
from services.sales import registration, schedule
from services.sales.book import SALES_CHANGED, sale_of


@strawberry.input
class ScheduleSaleInput:
    channel: str
    sku_id: strawberry.ID
    starts_at: datetime = strawberry.field(description="In the future, within a year.")
    ends_at: datetime | None = strawberry.field(default=None, description="After the start; null: until cancelled.")
    registration_opens_at: datetime | None = strawberry.field(
        default=None, description="Give either end of the window to require registration; default: now.",
    )
    registration_closes_at: datetime | None = strawberry.field(
        default=None, description="At the start at the latest; default: the start.",
    )


@strawberry.type
class SalePayload:
    sale: Sale | None
    user_errors: list[UserError]


@strawberry.input
class RegisterForSaleInput:
    channel: str
    sku_id: strawberry.ID
    buyer: BuyerInput = strawberry.field(description="The identities the buyer will order with; each counts once.")


@strawberry.type
class RegisterForSalePayload:
    sale: Sale | None
    registered: bool = strawberry.field(description="The buyer is registered (now, or already was).")
    user_errors: list[UserError]


def _refused(error: SaleError) -> list[UserError]:
    return [UserError(field=error.field, message=error.message, code=error.code)]


@strawberry.type
class SalesQuery:
    @strawberry.field(description="The sale of a SKU on a channel: the latest scheduled and not cancelled; null: none.")
    async def sale(self, info: Info, channel: str, sku_id: strawberry.ID) -> Sale | None:
        row = await readable_channel(info, channel)
        sku = decode_pk(sku_id, "Sku", field="skuId")
        async with info.context.db.read_sessions() as session:
            found = await schedule.latest_sale(session, row.id, sku)
        return Sale.of(sale_of(found), row.code, info.context.now) if found is not None else None


@strawberry.type
class SalesMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "Schedule a SKU's sale on a channel: nobody buys it there before the start; with a registration "
        "window, only registered buyers from the start on, within their purchase limit."
    ))
    async def schedule_sale(self, info: Info, input: ScheduleSaleInput) -> SalePayload:
        sku_id = decode_pk(input.sku_id, "Sku", field="skuId")
        now, settings = info.context.now, info.context.settings
        async with info.context.uow() as uow:
            channel = await channel_for_operator(uow.session, input.channel)
            try:
                row = await schedule.schedule_sale(
                    uow.session, channel, sku_id, starts_at=input.starts_at, ends_at=input.ends_at,
                    opens_at=input.registration_opens_at, closes_at=input.registration_closes_at,
                    actor=info.context.principal.actor, now=now, warm_seconds=settings.sale_warm_seconds,
                )
            except SaleError as error:
                await uow.rollback()
                return SalePayload(sale=None, user_errors=_refused(error))
            uow.publish(SALES_CHANGED, str(row.id).encode())
        return SalePayload(sale=Sale.of(sale_of(row), channel.code, now), user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "Cancel a sale: from then on the SKU sells on the channel as it did before the sale."
    ))
    async def cancel_sale(self, info: Info, sale_id: strawberry.ID) -> SalePayload:
        pk = decode_pk(sale_id, "Sale", field="saleId")
        now = info.context.now
        async with info.context.uow() as uow:
            try:
                row, channel = await schedule.cancel_sale(uow.session, pk, actor=info.context.principal.actor, now=now)
            except SaleError as error:
                await uow.rollback()
                return SalePayload(sale=None, user_errors=_refused(error))
            uow.publish(SALES_CHANGED, str(pk).encode())
        return SalePayload(sale=Sale.of(sale_of(row), channel, now), user_errors=[])

    @strawberry.mutation(description=(
        "Register a buyer for a SKU's sale while its registration is open. Registering again, in any "
        "spelling of the same phone, e-mail, device or account, changes nothing."
    ))
    async def register_for_sale(self, info: Info, input: RegisterForSaleInput) -> RegisterForSalePayload:
        principal = info.context.principal
        channel = await readable_channel(info, input.channel)
        if principal.order_number is not None or (
            principal.role is not None and not principal.is_admin and principal.channel != channel.code
        ):
            raise Forbidden("a key registers buyers on its own channel only", field="channel")
        sku_id = decode_pk(input.sku_id, "Sku", field="skuId")
        # A caller from the public is held to a cap per client address; a partner answers for its buyers.
        public = principal.role is None or principal.role is Role.STOREFRONT
        cap = info.context.settings.sale_registrations_per_address
        buyer, now = input.buyer, info.context.now
        async with info.context.uow() as uow:
            try:
                who = registration.buyer_identity(buyer.phone, buyer.email, buyer.device_id, buyer.recharge_account)
                done = await registration.register(
                    uow.session, channel.id, sku_id, who, now=now,
                    address=(info.context.client_ip or "unknown") if public else None,
                    per_address=cap if public and cap > 0 else None,
                )
            except SaleError as error:
                await uow.rollback()
                return RegisterForSalePayload(sale=None, registered=False, user_errors=_refused(error))
        return RegisterForSalePayload(sale=Sale.of(done.sale, channel.code, now), registered=True, user_errors=[])
