"""Reading the catalog change log: who changed what, when, from what, to what; newest first."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CatalogChange


async def change_page(
    session: AsyncSession, *, entity: str | None, code: str | None, before_id: int | None, limit: int,
) -> tuple[list[CatalogChange], bool]:
    query = select(CatalogChange)
    if entity is not None:
        query = query.where(CatalogChange.entity == entity)
    if code is not None:
        query = query.where(CatalogChange.code == code)
    if before_id is not None:
        query = query.where(CatalogChange.id < before_id)
    rows = list(await session.scalars(query.order_by(CatalogChange.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
