"""Revision 0013_card_code_digest on a database that already sold a secret through two SKUs.

Before it, a secret was unique per SKU only. The revision must not fail on the duplicates a
database already holds: of the codes sharing a secret the one that went furthest stays, the
others become VOID, and then no second copy of a secret can join the pool.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from config import Settings
from domain.catalog import CodeStatus, SkuKind
from models import CardCode, Sku
from services.core.database import Database
from services.core.migrate import alembic_config
from tests.e2e.shop import migrated_database
from tests.services import catalog_rows as rows

REVISION = "0013_card_code_digest"
A, S, R, V = CodeStatus.AVAILABLE, CodeStatus.SOLD, CodeStatus.RESERVED, CodeStatus.VOID

# (secret, SKU, status before), in the order they were imported.
BEFORE = [
    ("twice-available", "one", A), ("twice-available", "two", A),  # the first imported stays
    ("sold-in-two", "one", A), ("sold-in-two", "two", S),  # the sold one stays
    ("sold-twice", "one", S), ("sold-twice", "two", S),  # sold twice already: the first stays
    ("held-and-free", "one", R), ("held-and-free", "two", A), ("held-and-free", "three", A),
    ("void-and-free", "one", V), ("void-and-free", "two", A),  # a VOID code is out of the pool
    ("once", "two", A),
]
AFTER = [A, V, V, S, S, V, R, V, V, V, A, A]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with migrated_database(tmp_path) as url:
        database = Database.connect(Settings(database_url=url))
        try:
            yield database
        finally:
            await database.dispose()


def _revision_module() -> Any:
    revision = ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(REVISION)
    assert revision is not None
    return revision.module


async def _as_before_the_revision(db: Database) -> dict[str, Sku]:
    """Three SKUs whose pools share secrets, as a database before the revision could hold them."""
    async with db.sessions() as session, session.begin():
        await session.execute(text("DROP INDEX uq_card_code_digest"))
        brand = await rows.brand(session, rows.unique("brand"))
        category = await rows.category(session, rows.unique("category"))
        product = await rows.product(session, brand=brand, category=category, name="迁移测试", active=False)
        skus = {name: await rows.sku(session, product, SkuKind.CARD_CODE) for name in ("one", "two", "three")}
        for secret, sku, status in BEFORE:
            session.add(CardCode(sku_id=skus[sku].id, secret_ciphertext=b"sealed", secret_digest=secret, status=status))
            await session.flush()  # ids in import order
    return skus


def _upgrade(connection: Connection, module: Any) -> None:
    with Operations.context(MigrationContext.configure(connection)):
        module.upgrade()


async def test_the_revision_keeps_one_code_per_secret_and_then_refuses_a_second(
    db: Database, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    skus = await _as_before_the_revision(db)
    # Another test's logging set-up (import-linter's) may have disabled the existing loggers.
    monkeypatch.setattr(logging.getLogger("alembic.runtime.migration"), "disabled", False)
    caplog.set_level(logging.WARNING, logger="alembic.runtime.migration")

    async with db.sessions() as session, session.begin():
        await (await session.connection()).run_sync(_upgrade, _revision_module())

    async with db.sessions() as session:
        codes = (await session.execute(select(CardCode.id, CardCode.status).order_by(CardCode.id))).all()
    assert [status for _, status in codes] == AFTER
    sold_twice = codes[5].id
    assert caplog.messages == [
        "card codes whose secret is also in another code: 5 made VOID "
        f"(1 of them already reserved or sold: ids [{sold_twice}])"
    ]
    with pytest.raises(IntegrityError):
        async with db.sessions() as session, session.begin():
            session.add(CardCode(sku_id=skus["one"].id, secret_ciphertext=b"sealed", secret_digest="once", status=A))
    async with db.sessions() as session, session.begin():  # a VOID code is not in the pool
        session.add(CardCode(sku_id=skus["one"].id, secret_ciphertext=b"sealed", secret_digest="once", status=V))
