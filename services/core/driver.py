"""PostgreSQL's driver, asyncpg, without SQLAlchemy in between: for the one path where the
bridge costs more than the work (placing an order in a flash sale).

A statement through SQLAlchemy's asyncpg dialect costs the gateway about 75 µs of CPU (its
execution context, the greenlet bridge, the result's metadata) where asyncpg alone costs
about 14 µs, and a checkout from SQLAlchemy's pool about 60 µs. An order in a sale makes
four round trips, so the path that places one talks to asyncpg directly, on a small pool of
its own, opened on first use. Statements are prepared once per connection (asyncpg keeps
them by their text).

Statements sent here do not pass SQLAlchemy's events: tracing, which follows those, turns
this path off (`enabled`), and tests that count statements listen here too (`listen`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

Listener = Callable[[str], None]


class Driver:
    """A lazily opened asyncpg pool on the primary."""

    def __init__(self, url: str, *, size: int = 10) -> None:
        parsed = make_url(url)
        self._dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._warming = asyncio.Lock()
        self._listeners: list[Listener] = []
        self.enabled = True

    @property
    def size(self) -> int:
        return self._size

    def listen(self, listener: Listener) -> None:
        """Told the text of every statement sent through this driver (tests count them)."""
        self._listeners.append(listener)

    async def _opened(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    # Connecting gives up after 5 s, as the SQLAlchemy engines do (services/core/database.py).
                    # No floor of idle connections: asyncpg would keep reopening it, a traceback each
                    # time, while the database is down; used connections stay pooled all the same.
                    self._pool = await asyncpg.create_pool(self._dsn, min_size=0, max_size=self._size, timeout=5,
                                                           reset=_reset)
        return self._pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """One transaction on a pooled connection: committed on a clean exit, else rolled back."""
        pool = await self._opened()
        async with pool.acquire(timeout=10) as connection, connection.transaction():
            yield Session(connection, self._listeners)

    async def fetchrow(self, statement: str, *args: Any) -> asyncpg.Record | None:
        """One statement on its own (PostgreSQL makes it atomic): no BEGIN, no COMMIT."""
        pool = await self._opened()
        for listener in self._listeners:
            listener(statement)
        async with pool.acquire(timeout=10) as connection:
            return await connection.fetchrow(statement, *args)

    async def fetch(self, statement: str, *args: Any) -> list[asyncpg.Record]:
        """One statement on its own (PostgreSQL makes it atomic): no BEGIN, no COMMIT."""
        pool = await self._opened()
        for listener in self._listeners:
            listener(statement)
        async with pool.acquire(timeout=10) as connection:
            return await connection.fetch(statement, *args)

    async def warm(self, connections: int) -> int:
        """Open the pool up to `connections` (at most its size) before a rush needs them: a
        connection opened in the rush costs its buyer a connect, an authentication and
        asyncpg's type introspection (a sale's warm-up, services/sales/warm.py). Best effort:
        returns how many are open, fewer when the server refuses more (too many clients)."""
        pool = await self._opened()
        # One warm-up at a time: each holds its connections until all are open, and two at
        # once could each hold half the pool waiting for the rest.
        async with self._warming:
            held: list[asyncpg.Connection] = []
            try:
                for _ in range(max(1, min(connections, self._size))):
                    try:
                        held.append(await pool.acquire(timeout=10))
                    except (OSError, asyncpg.PostgresError):
                        break
                await asyncio.gather(*(connection.fetchval("SELECT 1") for connection in held))
            finally:
                for connection in held:
                    await pool.release(connection)
            return len(held)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _reset(connection: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool, beyond the rollback of a
    transaction left open that asyncpg always does: nothing, since these statements leave no
    session state behind (no SET, LISTEN, advisory lock or cursor). asyncpg's default reset
    sends a query to clear all of that at every release: a round trip per transaction."""


class Session:
    """Statements on one connection inside its transaction."""

    __slots__ = ("_connection", "_listeners")

    def __init__(self, connection: asyncpg.Connection, listeners: list[Listener]) -> None:
        self._connection = connection
        self._listeners = listeners

    async def fetch(self, statement: str, *args: Any) -> list[asyncpg.Record]:
        for listener in self._listeners:
            listener(statement)
        return await self._connection.fetch(statement, *args)

    async def fetchrow(self, statement: str, *args: Any) -> asyncpg.Record | None:
        for listener in self._listeners:
            listener(statement)
        return await self._connection.fetchrow(statement, *args)

    async def fetchval(self, statement: str, *args: Any) -> Any:
        for listener in self._listeners:
            listener(statement)
        return await self._connection.fetchval(statement, *args)

    async def execute(self, statement: str, *args: Any) -> str:
        for listener in self._listeners:
            listener(statement)
        return await self._connection.execute(statement, *args)
