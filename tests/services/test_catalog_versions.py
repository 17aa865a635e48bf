"""The conditional UPDATE itself decides: an operator's change planned from a version that
another writer moves on before the write lands changes nothing, and says CONFLICT."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from broker import MemoryBroker
from domain.catalog_input import CatalogRefused
from models import Brand
from services.catalog.apply import apply_plan
from services.catalog.commands import create
from services.catalog.plan import Mode, make_plan
from services.core.database import Database
from services.core.unit_of_work import UnitOfWork
from tests.services.catalog_rows import unique

NOW = datetime(2026, 11, 11, tzinfo=UTC)


async def test_a_write_planned_from_a_version_moved_on_meanwhile_is_a_conflict(catalog_db: Database) -> None:
    code = unique("brand")
    async with UnitOfWork(catalog_db, MemoryBroker()) as uow:
        await create(uow, {"type": "brand", "code": code, "name": "原名"}, actor="test", at=NOW)
    # Planned from version 1, outside the writer's transaction...
    async with catalog_db.fresh_sessions() as reads:
        plan = await make_plan(reads, [{"type": "brand", "code": code, "name": "甲"}], mode=Mode.UPDATE, version=1)
    assert plan.ok
    # ...while another operator's change lands first.
    async with catalog_db.sessions() as session, session.begin():
        await session.execute(update(Brand).where(Brand.code == code).values(name="乙", version=Brand.version + 1))

    with pytest.raises(CatalogRefused) as refused:
        async with UnitOfWork(catalog_db, MemoryBroker()) as uow:
            await apply_plan(uow.session, plan, actor="test", at=NOW, version=1)

    assert [(p.field, p.code) for p in refused.value.problems] == [("version", "CONFLICT")]
    async with catalog_db.fresh_sessions() as session:
        assert (await session.execute(select(Brand.name, Brand.version).where(Brand.code == code))).one() == ("乙", 2)
