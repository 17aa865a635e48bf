"""A catalog of its own for each service test module: an empty database, migrated.

The session's demo database is shared with the GraphQL tests, which count its products;
service tests that need a controlled catalog build it here instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from config import Settings
from models import Product
from services.core.database import Database
from services.core.migrate import upgrade
from services.core.secret_box import SecretBox
from tests.services import catalog_rows as rows
from tests.support import fresh_database, new_secret_key


@pytest.fixture(scope="module")
def empty_catalog_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Sync on purpose: upgrade() runs its own event loop.
    for url in fresh_database(tmp_path_factory.mktemp("catalog")):
        upgrade(url)
        yield url


@pytest.fixture(scope="module")
async def catalog_db(empty_catalog_url: str) -> AsyncIterator[Database]:
    database = Database.connect(Settings(database_url=empty_catalog_url))
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
def box() -> SecretBox:
    """A secret box with a key of its own for the module."""
    return SecretBox(new_secret_key())


@pytest.fixture(scope="module")
async def import_shelf(catalog_db: Database) -> Product:
    """An inactive product to hang the module's import SKUs on, out of every listing."""
    async with catalog_db.sessions() as session, session.begin():
        brand = await rows.brand(session, rows.unique("brand"))
        category = await rows.category(session, rows.unique("category"))
        return await rows.product(session, brand=brand, category=category, name="导入测试", active=False)
