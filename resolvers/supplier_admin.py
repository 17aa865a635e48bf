"""Operators' suppliers: the list, and creating or changing one with its connection settings.

A new connection applies at once in every process; the secret is stored sealed and never
shown again (`secretSet` says whether there is one).
"""

from __future__ import annotations

import strawberry
from sqlalchemy import select
from strawberry import UNSET

from models import Supplier as SupplierRow
from resolvers.catalog_admin import ArchiveInput
from resolvers.catalog_commands import UPDATE_FIELDS, fresh, given, run
from schema.catalog import Supplier
from schema.context import Info
from schema.errors import UserError
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk
from services.catalog.archive import archive
from services.catalog.supplier_commands import create_supplier, update_supplier
from services.core.secret_box import SecretBox
from services.fulfilment.supplier_settings import Connection


@strawberry.input(description="A supplier and, optionally, how to reach it.")
class CreateSupplierInput:
    code: str
    name: str
    active: bool = True
    adapter: str | None = strawberry.field(default=None, description="The adapter kind: http.")
    base_url: str | None = None
    secret: str | None = strawberry.field(default=None, description="The shared signing secret; stored sealed, never shown.")
    timeout_seconds: float | None = None


@strawberry.input(description="Fields to change; those left out stay as they are.")
class UpdateSupplierInput:
    id: strawberry.ID
    version: int
    name: str | None = UNSET
    active: bool | None = UNSET
    adapter: str | None = None
    base_url: str | None = None
    secret: str | None = None
    timeout_seconds: float | None = None


@strawberry.type
class SupplierPayload:
    supplier: Supplier | None
    user_errors: list[UserError]


async def _supplier(info: Info, pk: int | None, errors: list[UserError]) -> SupplierPayload:
    row = await fresh(info, SupplierRow, pk) if pk is not None else None
    return SupplierPayload(supplier=Supplier.from_model(row) if row else None, user_errors=errors)


def _box(info: Info) -> SecretBox:
    return SecretBox(info.context.settings.secret_key, info.context.settings.old_secret_keys)


@strawberry.type
class SupplierAdminMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Add a supplier; usable by SKUs at once.")
    async def create_supplier(self, info: Info, input: CreateSupplierInput) -> SupplierPayload:
        record = {"type": "supplier", "code": input.code, "name": input.name, "active": input.active}
        connection = Connection(input.base_url, input.secret, input.timeout_seconds, input.adapter)
        who = {"actor": info.context.principal.actor, "at": info.context.now}
        pk, errors = await run(info, lambda uow: create_supplier(uow, _box(info), record, connection, **who))  # type: ignore[arg-type]
        return await _supplier(info, pk, errors)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Change a supplier or its connection; no restart needed.")
    async def update_supplier(self, info: Info, input: UpdateSupplierInput) -> SupplierPayload:
        pk = decode_pk(input.id, "Supplier")
        changes = given(name=input.name, active=input.active)
        connection = Connection(input.base_url, input.secret, input.timeout_seconds, input.adapter)
        who = {"actor": info.context.principal.actor, "at": info.context.now}
        done, errors = await run(
            info, lambda uow: update_supplier(uow, _box(info), pk, input.version, changes, connection, **who),  # type: ignore[arg-type]
            UPDATE_FIELDS,
        )
        return await _supplier(info, done, errors)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Retire a supplier no SKU on sale names.")
    async def archive_supplier(self, info: Info, input: ArchiveInput) -> SupplierPayload:
        pk = decode_pk(input.id, "Supplier")
        who = {"actor": info.context.principal.actor, "at": info.context.now}
        done, errors = await run(info, lambda uow: archive(uow, "supplier", pk, input.version, **who))  # type: ignore[arg-type]
        return await _supplier(info, done, errors)


@strawberry.type
class SupplierAdminQuery:
    @strawberry.field(permission_classes=ADMIN_ONLY, description="Suppliers by code; archived ones on request.")
    async def suppliers(self, info: Info, include_archived: bool = False) -> list[Supplier]:
        query = select(SupplierRow).order_by(SupplierRow.code)
        if not include_archived:
            query = query.where(SupplierRow.archived_at.is_(None))
        async with info.context.db.fresh_sessions() as session:
            return [Supplier.from_model(row) for row in await session.scalars(query)]
