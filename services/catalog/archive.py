"""Archiving catalog objects: off sale and out of the catalog for good, never deleted.

Past orders, statements, ledger entries and codes keep their rows to point at. What an
archived object leaves behind must still make sense: a brand or category in use by a
product on sale, or a SKU inside a bundle on sale, is not archived (IN_USE) until those
are changed or archived first. One conditional UPDATE decides: of two operators
archiving, or one archiving and one editing from the same version, one wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update

from domain.catalog_input import refused
from models import BundleItem, CatalogChange, Product, Sku, SkuSupplier
from services.catalog.apply import Applied
from services.catalog.commands import MODELS, announce
from services.catalog.state import CatalogState
from services.core.database import rows_changed
from services.core.unit_of_work import UnitOfWork

# Rows that go off sale when archived also lose their `active` flag.
_HAS_ACTIVE = {"channel", "supplier", "product", "sku"}


async def archive(
    uow: UnitOfWork, kind: str, pk: int, version: int | None, *, actor: str, at: datetime
) -> int:
    if version is not None and version < 1:
        raise refused("version", "a version is a whole number from 1", "OUT_OF_RANGE")
    model = MODELS[kind]
    session = uow.session
    row = await session.get(model, pk)
    if row is None:
        raise refused("id", f"no such {kind}", "NOT_FOUND")
    if row.archived_at is not None:
        return pk  # archived already: nothing changes, nothing is recorded again
    await _check_unused(uow, kind, pk)
    key = row.slug if kind == "product" else row.code
    state = await CatalogState.of_records(session, [{"type": kind, ("slug" if kind == "product" else "code"): key}])
    before = state.record_of(kind, key)
    values: dict[str, Any] = {"archived_at": at, "version": model.version + 1}
    if kind in _HAS_ACTIVE:
        values["active"] = False
    condition = [model.id == pk, model.archived_at.is_(None)]
    if version is not None:
        condition.append(model.version == version)
    result = await session.execute(update(model).where(*condition).values(**values).execution_options(synchronize_session=False))
    if rows_changed(result) != 1:
        raise refused("version", "changed since it was read: read it again and repeat the change", "CONFLICT")
    session.add(CatalogChange(entity=kind.upper(), entity_id=pk, code=key, action="ARCHIVED", actor=actor,
                              before=before, after=None, at=at))
    applied = Applied(suppliers_changed=kind == "supplier")
    if kind == "sku":
        applied.stock_skus.add(pk)
    announce(uow, applied)
    return pk


async def _check_unused(uow: UnitOfWork, kind: str, pk: int) -> None:
    session = uow.session
    if kind in ("brand", "category"):
        column = Product.brand_id if kind == "brand" else Product.category_id
        if await session.scalar(select(exists().where(column == pk, Product.archived_at.is_(None)))):
            raise refused("id", f"products not archived are of this {kind}: change or archive them first", "IN_USE")
    if kind == "sku":
        holder = await session.scalar(
            select(Sku.code).join(BundleItem, BundleItem.bundle_sku_id == Sku.id)
            .where(BundleItem.component_sku_id == pk, Sku.archived_at.is_(None)).limit(1)
        )
        if holder is not None:
            raise refused("id", f"the bundle {holder} holds this SKU: change or archive it first", "IN_USE")
    if kind == "supplier":
        user = await session.scalar(
            select(Sku.code).join(SkuSupplier, SkuSupplier.sku_id == Sku.id)
            .where(SkuSupplier.supplier_id == pk, Sku.archived_at.is_(None)).limit(1)
        )
        if user is not None:
            raise refused("id", f"the SKU {user} is fulfilled by this supplier: change or archive it first "
                                "(or set the supplier inactive)", "IN_USE")
