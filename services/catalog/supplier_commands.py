"""Suppliers and how to reach them: the row through the catalog's commands, the connection
(adapter, base URL, sealed secret, timeout) beside it in the same transaction.

The secret is sealed before it is stored and never read back: the change log records that
a secret was set, not what it is. Every process rebuilds the supplier's adapter once the
change commits (SUPPLIERS_CHANGED), so no gateway needs a restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from domain.catalog_input import refused
from models import CatalogChange, Supplier
from services.catalog import commands
from services.core.database import rows_changed
from services.core.events import SUPPLIERS_CHANGED
from services.core.secret_box import SecretBox
from services.core.unit_of_work import UnitOfWork
from services.fulfilment.supplier_settings import BadConnection, Connection, connect


async def create_supplier(
    uow: UnitOfWork, box: SecretBox, record: dict[str, Any], connection: Connection, *, actor: str, at: datetime,
) -> int:
    saved = await commands.create(uow, record, actor=actor, at=at)
    if connection != Connection():
        await _connect(uow, box, saved.id, connection, version=None, actor=actor, at=at)
    return saved.id


async def update_supplier(
    uow: UnitOfWork, box: SecretBox, pk: int, version: int, changes: dict[str, Any], connection: Connection,
    *, actor: str, at: datetime,
) -> int:
    saved = await commands.update(uow, "supplier", pk, version, changes, actor=actor, at=at)
    if connection != Connection():
        # Conditional on the version as this command left it: one more writer in between is a CONFLICT.
        await _connect(uow, box, pk, connection, version=version + (1 if saved.changed else 0), actor=actor, at=at)
    return pk


async def _connect(
    uow: UnitOfWork, box: SecretBox, pk: int, connection: Connection, *, version: int | None, actor: str, at: datetime,
) -> None:
    session = uow.session
    before = await _settings(uow, pk)
    try:
        after = await connect(session, box, pk, connection)
    except BadConnection as error:
        raise refused(error.field, error.message, "INVALID_CONNECTION") from None
    condition = [Supplier.id == pk] + ([Supplier.version == version] if version is not None else [])
    result = await session.execute(
        update(Supplier).where(*condition).values(version=Supplier.version + 1).execution_options(synchronize_session=False)
    )
    if rows_changed(result) != 1:
        raise refused("version", "changed since it was read: read it again and repeat the change", "CONFLICT")
    after = {**after, "secretChanged": connection.secret is not None}
    code = await session.scalar(select(Supplier.code).where(Supplier.id == pk))
    session.add(CatalogChange(entity="SUPPLIER", entity_id=pk, code=code or "", action="CONNECTED", actor=actor,
                              before=before, after=after, at=at))
    uow.publish(SUPPLIERS_CHANGED, str(pk).encode())


async def _settings(uow: UnitOfWork, pk: int) -> dict[str, Any]:
    row = (await uow.session.execute(
        select(Supplier.adapter, Supplier.base_url, Supplier.timeout_seconds, Supplier.secret_ciphertext.is_not(None))
        .where(Supplier.id == pk)
    )).one()
    return {"adapter": row[0], "baseUrl": row[1], "timeoutSeconds": row[2], "secretSet": bool(row[3])}
