"""The benchmark's own gateway database: a SQLite file in a temporary folder, or a fresh
PostgreSQL database `quanyi_bench_<random>` on 127.0.0.1 that is dropped afterwards.
Either is migrated, loaded with the demo data and filled to a full catalog page."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from catalog_data import fill_catalog
from servers import project_env

PG_ADMIN = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "postgres"}


@contextlib.contextmanager
def bench_database(kind: str, folder: Path, *, catalog: bool = True) -> Iterator[dict[str, str]]:
    """The environment a gateway needs to serve the database; with `catalog`, filled to a
    full catalog page beyond the demo data."""
    env = {
        "QUANYI_SECRET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        # One machine plays every buyer of a benchmark: from one address, mostly unpaid. Its
        # budgets and holds would throttle it like a flood; the admission benchmark
        # (abuse.py) turns budgets back on itself.
        "QUANYI_RATE_LIMITS": "0",
        "QUANYI_HOLD_LIMIT": "0",
        "QUANYI_HOLD_LIMIT_PER_IP": "0",
    }
    if kind == "sqlite":
        env["QUANYI_DATABASE_URL"] = f"sqlite+aiosqlite:///{folder / 'quanyi.db'}"
        _prepare(env, folder, catalog)
        yield env
        return
    name = f"quanyi_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        env["QUANYI_DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        _prepare(env, folder, catalog)
        yield env
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _prepare(env: dict[str, str], folder: Path, catalog: bool) -> None:
    for command in ("migrate", "seed-demo"):
        done = subprocess.run(
            [*_quanyi(), command],
            env=project_env(env),
            cwd=folder,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"quanyi {command} failed:\n{done.stderr.decode(errors='replace')}")
    if not catalog:
        return
    from config import Settings  # the gateway's own settings, read from the same environment

    asyncio.run(fill_catalog(Settings.from_env(env)))


def _quanyi() -> list[str]:
    beside = Path(sys.executable).with_name("quanyi")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("quanyi")
    if found is None:
        raise RuntimeError("the `quanyi` command is not installed: pip install -e . first")
    return [found]


async def _admin(statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(**PG_ADMIN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
