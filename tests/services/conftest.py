"""A catalog of its own for each service test module: an empty database, migrated.

The session's demo database is shared with the GraphQL tests, which count its products;
service tests that need a controlled catalog build it here instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from config import Settings
from services.database import Database
from services.migrate import upgrade
from tests.support import fresh_database


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
