"""Fixtures for the GraphQL tests: the global IDs of the demo catalog."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from models import Brand, Category, Channel, Product, Sku, Supplier
from services.database import Database
from tests.graphql.catalog_support import DemoCatalog


@pytest.fixture(scope="session")
async def demo(db: Database) -> DemoCatalog:
    async with db.read_sessions() as session:
        return DemoCatalog(
            products={r.slug: r.id for r in await session.scalars(select(Product))},
            skus={r.code: r.id for r in await session.scalars(select(Sku))},
            brands={r.code: r.id for r in await session.scalars(select(Brand))},
            categories={r.code: r.id for r in await session.scalars(select(Category))},
            channels={r.code: r.id for r in await session.scalars(select(Channel))},
            suppliers={r.code: r.id for r in await session.scalars(select(Supplier))},
        )
