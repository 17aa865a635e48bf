"""Orders placed before contacts were canonical are brought into the form new orders store."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from pathlib import Path
from typing import cast

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from services.core.migrate import alembic_config, upgrade
from tests.support import fresh_database

REVISION = "0011_canonical_contacts"
TYPED = [
    # (phone, email, device) as buyers typed them, then as the migration leaves them
    (("+8615899990000", " Li@Example.CN ", "ABC-1 "), ("15899990000", "li@example.cn", "abc-1")),
    (("008613800138000", None, None), ("13800138000", None, None)),
    (("8617012345678", "wang@qq.com", "abc-1"), ("17012345678", "wang@qq.com", "abc-1")),
    (("13800138000", None, "dev"), ("13800138000", None, "dev")),
    (("+85291234567", None, None), ("+85291234567", None, None)),  # no mainland mobile: left as it was
    (("12345", None, None), ("12345", None, None)),
]


async def test_orders_keep_their_buyers_contacts_in_canonical_form(tmp_path: Path) -> None:
    databases = cast(Generator[str, None, None], fresh_database(tmp_path))
    url = await asyncio.to_thread(next, databases)
    engine = create_async_engine(url)
    try:
        # The revision before this one, wherever the chain puts it.
        before = ScriptDirectory.from_config(alembic_config(url)).get_revision(REVISION).down_revision
        await asyncio.to_thread(upgrade, url, before)
        async with engine.begin() as connection:
            await connection.execute(text(
                "INSERT INTO channel (id, code, name, kind, currency, commission_bp, settlement_cycle, active, public)"
                " VALUES (1, 'web', 'Web', 'OWN_SITE', 'CNY', 0, 'MONTHLY', true, true)"))
            for n, ((phone, email, device), _) in enumerate(TYPED):
                await connection.execute(text(
                    'INSERT INTO "order" (id, number, channel_id, idempotency_key, status, currency, total_fen,'
                    " buyer_phone, buyer_email, device_id, placed_by, created_at, updated_at) VALUES"
                    " (:id, :number, 1, :key, 'PENDING_PAYMENT', 'CNY', 100, :phone, :email, :device, 'anonymous',"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                    {"id": n + 1, "number": f"QY{n}", "key": f"k{n}", "phone": phone, "email": email, "device": device})

        await asyncio.to_thread(upgrade, url)

        async with engine.connect() as connection:
            found = (await connection.execute(
                text('SELECT buyer_phone, buyer_email, device_id FROM "order" ORDER BY id'))).all()
        assert [tuple(row) for row in found] == [after for _, after in TYPED]
    finally:
        await engine.dispose()
        await asyncio.to_thread(databases.close)
