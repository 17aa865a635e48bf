"""Fixtures for the GraphQL tests: the global IDs of the demo catalog."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from domain.access import Role
from models import Brand, Category, Channel, Product, Sku, Supplier
from services.access.keys import issue_key
from services.core.database import Database
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


@dataclass(frozen=True)
class Keys:
    """Keys issued for the test run, one per kind of caller."""

    admin: str
    taobao: str  # marketplace partner
    b2b: str  # B2B partner of channel b2b-demo
    web: str  # storefront key of the public channel web


@pytest.fixture(scope="session")
async def keys(db: Database) -> Keys:
    async with db.sessions() as session, session.begin():
        admin = await issue_key(session, role=Role.ADMIN, channel=None, name="test operator")
        taobao = await issue_key(session, role=Role.PARTNER, channel="taobao", name="test taobao")
        b2b = await issue_key(session, role=Role.PARTNER, channel="b2b-demo", name="test b2b")
        web = await issue_key(session, role=Role.STOREFRONT, channel="web", name="test web")
    return Keys(admin.plaintext, taobao.plaintext, b2b.plaintext, web.plaintext)
