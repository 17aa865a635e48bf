"""Operators' mutations of SKUs: create, update, archive, and a top-up's counter stock."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import UNSET

from models import Sku as SkuRow
from resolvers.catalog_admin import ArchiveInput
from resolvers.catalog_commands import SKU_FIELDS, UPDATE_FIELDS, fresh, given, run
from schema.amount import AmountInput
from schema.catalog import RechargeAccountFormat, Sku, SkuKind, load_skus
from schema.channel import NO_CHANNEL
from schema.context import Info
from schema.errors import UserError
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk
from services.catalog import commands
from services.catalog.archive import archive
from services.core.events import stock_event
from services.inventory.counters import CounterRefused, set_on_hand


@strawberry.input(description="One SKU inside a bundle, and how many of it one bundle holds.")
class ComponentInput:
    sku_id: strawberry.ID
    quantity: int = 1


@strawberry.input(description="A supplier of a SKU (by code): its place in the failover order, its product code and cost.")
class SkuSupplierInput:
    supplier: str
    priority: int | None = strawberry.field(default=None, description="1 first; default: the list's order.")
    product_code: str | None = strawberry.field(default=None, description="What the supplier calls it; default the SKU code.")
    cost: AmountInput | None = strawberry.field(default=None, description="Its price per unit; default the SKU's supplier cost.")


@strawberry.input(description="A SKU. Amounts are decimal strings in the SKU's currency (default CNY).")
class CreateSkuInput:
    product_id: strawberry.ID
    code: str
    name: str
    kind: SkuKind  # type: ignore[valid-type]
    base_price: AmountInput
    face_value: AmountInput | None = strawberry.field(default=None, description="Default: the base price.")
    supplier_cost: AmountInput | None = strawberry.field(default=None, description="Default: 0.")
    presale_cap: int | None = strawberry.field(default=None, description="CARD_CODE and SERIAL only.")
    components: list[ComponentInput] | None = strawberry.field(default=None, description="BUNDLE only.")
    currency: str | None = None
    price_floor: AmountInput | None = None
    price_ceiling: AmountInput | None = None
    serial_uses: int | None = strawberry.field(default=None, description="SERIAL only: uses of each serial.")
    recharge_account_formats: list[RechargeAccountFormat] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="DIRECT_RECHARGE only: accounts it accepts; none given: any.")
    suppliers: list[SkuSupplierInput] | None = None


@strawberry.input(description="Fields to change; those left out stay as they are (null clears a floor or ceiling).")
class UpdateSkuInput:
    id: strawberry.ID
    version: int
    name: str | None = UNSET
    base_price: AmountInput | None = UNSET
    face_value: AmountInput | None = UNSET
    supplier_cost: AmountInput | None = UNSET
    price_floor: AmountInput | None = UNSET
    price_ceiling: AmountInput | None = UNSET
    presale_cap: int | None = UNSET
    serial_uses: int | None = UNSET
    recharge_account_formats: list[RechargeAccountFormat] | None = UNSET  # type: ignore[valid-type]
    components: list[ComponentInput] | None = UNSET
    suppliers: list[SkuSupplierInput] | None = UNSET


@strawberry.input(description="Units a top-up SKU can still deliver; never below what open orders hold.")
class SetTopUpStockInput:
    sku_id: strawberry.ID
    on_hand: int


@strawberry.type
class SkuPayload:
    sku: Sku | None
    user_errors: list[UserError]


async def _sku(info: Info, pk: int | None, errors: list[UserError]) -> SkuPayload:
    row = await fresh(info, SkuRow, pk) if pk is not None else None
    return SkuPayload(sku=(await load_skus(info, [row], NO_CHANNEL))[0] if row else None, user_errors=errors)


def _amount(value: Any) -> Any:
    return None if value is None else str(value)


def _suppliers(lines: list[SkuSupplierInput] | None) -> list[dict[str, Any]] | None:
    if lines is None:
        return None
    return [{"supplier": s.supplier, "priority": s.priority, "productCode": s.product_code, "cost": _amount(s.cost)}
            for s in lines]


async def _components(info: Info, parts: list[ComponentInput] | None) -> list[dict[str, Any]] | None:
    if parts is None:
        return None
    ids = [decode_pk(part.sku_id, "Sku", field=f"components.{i}.skuId") for i, part in enumerate(parts)]
    async with info.context.uow() as uow:
        codes = await commands.codes_of(uow, "sku", ids)
    # An unknown id stays an id: the checks then say the SKU does not exist.
    return [{"sku": codes.get(pk, f"UNKNOWN-{pk}"), "quantity": part.quantity} for pk, part in zip(ids, parts, strict=True)]


def _formats(values: list[Any] | None) -> list[str] | None:
    return None if values is None else [value.value for value in values]


@strawberry.type
class SkuAdminMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Add a SKU of any kind to a product.")
    async def create_sku(self, info: Info, input: CreateSkuInput) -> SkuPayload:
        product_id = decode_pk(input.product_id, "Product", field="productId")
        async with info.context.uow() as uow:
            slugs = await commands.codes_of(uow, "product", [product_id])
        record = {
            "type": "sku", "code": input.code, "product": slugs.get(product_id, f"unknown-{product_id}"),
            "name": input.name, "kind": input.kind.value, "currency": input.currency or "CNY",  # type: ignore[attr-defined]
            "basePrice": _amount(input.base_price), "faceValue": _amount(input.face_value),
            "supplierCost": _amount(input.supplier_cost), "priceFloor": _amount(input.price_floor),
            "priceCeiling": _amount(input.price_ceiling), "presaleCap": input.presale_cap or 0,
            "serialUses": input.serial_uses or 1, "rechargeAccountFormats": _formats(input.recharge_account_formats),
            "components": await _components(info, input.components), "suppliers": _suppliers(input.suppliers),
        }
        who = {"actor": info.context.principal.actor, "at": info.context.now}
        saved, errors = await run(info, lambda uow: commands.create(uow, record, **who), SKU_FIELDS)  # type: ignore[arg-type]
        return await _sku(info, saved.id if saved else None, errors)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Change a SKU; kind, currency and product stay.")
    async def update_sku(self, info: Info, input: UpdateSkuInput) -> SkuPayload:
        pk = decode_pk(input.id, "Sku")
        changes = given(
            name=input.name, basePrice=input.base_price, faceValue=input.face_value, supplierCost=input.supplier_cost,
            priceFloor=input.price_floor, priceCeiling=input.price_ceiling, presaleCap=input.presale_cap,
            serialUses=input.serial_uses,
        )
        if input.recharge_account_formats is not UNSET:
            changes["rechargeAccountFormats"] = _formats(input.recharge_account_formats)
        if input.components is not UNSET:
            changes["components"] = await _components(info, input.components)
        if input.suppliers is not UNSET:
            changes["suppliers"] = _suppliers(input.suppliers)
        who = {"actor": info.context.principal.actor, "at": info.context.now}
        saved, errors = await run(
            info, lambda uow: commands.update(uow, "sku", pk, input.version, changes, **who),  # type: ignore[arg-type]
            {**SKU_FIELDS, **UPDATE_FIELDS},
        )
        return await _sku(info, saved.id if saved else None, errors)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Take a SKU off sale for good; its orders and codes stay readable.")
    async def archive_sku(self, info: Info, input: ArchiveInput) -> SkuPayload:
        pk = decode_pk(input.id, "Sku")
        who = {"actor": info.context.principal.actor, "at": info.context.now}
        done, errors = await run(info, lambda uow: archive(uow, "sku", pk, input.version, **who))  # type: ignore[arg-type]
        return await _sku(info, done, errors)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Set the units a top-up SKU can still deliver.")
    async def set_top_up_stock(self, info: Info, input: SetTopUpStockInput) -> SkuPayload:
        pk = decode_pk(input.sku_id, "Sku", field="skuId")
        try:
            async with info.context.uow() as uow:
                await set_on_hand(uow.session, pk, input.on_hand, info.context.settings.stock_slots)
                stock_event(uow, [pk])
        except CounterRefused as error:
            return SkuPayload(sku=None, user_errors=[UserError(field=error.field, message=error.message, code=error.code)])
        return await _sku(info, pk, [])
