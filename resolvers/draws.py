"""Blind boxes: operators set a box's pool and close its rounds; anyone reads the rounds."""

from __future__ import annotations

import strawberry

from domain.catalog import SkuKind
from models import Sku as SkuRow
from schema.context import Info
from schema.draws import BlindBox, DrawRound, blind_box
from schema.errors import UserError
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk
from services.core.events import CATALOG_CHANGED
from services.core.secret_box import SecretBox
from services.draws import pool, reads


@strawberry.input(description="One SKU a box can hold and its weight (1 to 1,000,000); the list's order is the published order.")
class BlindBoxItemInput:
    sku_id: strawberry.ID
    weight: int


@strawberry.input
class SetBlindBoxPoolInput:
    sku_id: strawberry.ID = strawberry.field(description="The BLIND_BOX SKU.")
    items: list[BlindBoxItemInput]


@strawberry.type
class BlindBoxPayload:
    blind_box: BlindBox | None
    user_errors: list[UserError]


@strawberry.type
class CloseDrawRoundPayload:
    closed: DrawRound | None = strawberry.field(description="The round closed; its seed is revealed once its draws settle.")
    blind_box: BlindBox | None = strawberry.field(description="The box, with the next round's commitment.")
    user_errors: list[UserError]


def _seeds(info: Info) -> SecretBox:
    return info.context.seeds or SecretBox(info.context.settings.secret_key, info.context.settings.old_secret_keys)


@strawberry.type
class DrawsQuery:
    @strawberry.field(description=(
        "A blind box's seed rounds, newest first: each commitment, and once a round is revealed its seed and "
        "every draw it made, so anyone can recompute them (docs/draws.md). Null for an unknown box."
    ))
    async def draw_rounds(self, info: Info, sku_id: strawberry.ID) -> list[DrawRound] | None:
        pk = decode_pk(sku_id, "Sku", field="skuId")
        async with info.context.db.fresh_sessions() as session:
            box = await session.get(SkuRow, pk)
            if box is None or box.kind is not SkuKind.BLIND_BOX:
                return None
            return [DrawRound.of(view) for view in await reads.rounds_of(session, _seeds(info), pk)]


@strawberry.type
class DrawsMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "Set a blind box's items and weights; the first pool opens the box's first round and publishes its "
        "commitment. Refused (POOL_FROZEN) once a unit has been drawn."
    ))
    async def set_blind_box_pool(self, info: Info, input: SetBlindBoxPoolInput) -> BlindBoxPayload:
        box_id = decode_pk(input.sku_id, "Sku", field="skuId")
        items = [
            pool.PoolItem(decode_pk(item.sku_id, "Sku", field=f"items.{i}.skuId"), item.weight)
            for i, item in enumerate(input.items)
        ]
        async with info.context.uow() as uow:
            refused = await pool.set_pool(uow.session, _seeds(info), box_id, items, info.context.now)
            if refused is not None:
                await uow.rollback()
                return BlindBoxPayload(blind_box=None, user_errors=[UserError(field=refused.field, message=refused.message, code=refused.code)])
            uow.publish(CATALOG_CHANGED, b"blind-box")  # cached terms and catalog reference forget
        info.context.read_from_primary()
        return BlindBoxPayload(blind_box=await blind_box(info, box_id), user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "Close a blind box's open round and open the next: new draws come from a new seed, whose commitment is "
        "published at once. The closed round's seed is revealed (drawRounds) when none of its draws is unsettled."
    ))
    async def close_draw_round(self, info: Info, sku_id: strawberry.ID) -> CloseDrawRoundPayload:
        box_id = decode_pk(sku_id, "Sku", field="skuId")
        seeds = _seeds(info)
        async with info.context.uow() as uow:
            closed = await pool.close_round(uow.session, seeds, box_id, info.context.now)
            if closed is None:
                error = UserError(field="skuId", message="no blind box with an open round", code="NOT_FOUND")
                return CloseDrawRoundPayload(closed=None, blind_box=None, user_errors=[error])
        info.context.read_from_primary()
        async with info.context.db.fresh_sessions() as session:
            views = await reads.rounds_of(session, seeds, box_id)
        view = next(v for v in views if v.number == closed.number)
        return CloseDrawRoundPayload(closed=DrawRound.of(view), blind_box=await blind_box(info, box_id), user_errors=[])
