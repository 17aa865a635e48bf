"""Alembic environment: runs migrations over the async engine of QUANYI_DATABASE_URL."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import models
from config import DEFAULT_DATABASE_URL
from models.base import UtcDateTime
from services.core.database import create_engine

target_metadata = models.Base.metadata


def _url() -> str:
    import os

    return (
        context.config.get_main_option("sqlalchemy.url")
        or os.environ.get("QUANYI_DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )


def _render_item(kind: str, obj: object, autogen_context: object) -> str | bool:
    # Migrations spell the UTC timestamp type as the plain column type it wraps.
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_item=_render_item,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        on_version_apply=context.config.attributes.get("on_version_apply"),
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(_run_online())
