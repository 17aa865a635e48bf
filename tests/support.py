"""Test support: fresh databases per run, and a GraphQL client over the real ASGI app."""

from __future__ import annotations

import asyncio
import contextvars
import os
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

TEST_DATABASE_URL = os.environ.get("QUANYI_TEST_DATABASE_URL") or None
TEST_REDIS_URL = os.environ.get("QUANYI_TEST_REDIS_URL") or None


def fresh_database(tmp: Path) -> Iterator[str]:
    """A database of its own for this run: a new SQLite file, or a new PostgreSQL database
    created beside the configured one and dropped afterwards."""
    if TEST_DATABASE_URL is None:
        yield f"sqlite+aiosqlite:///{tmp / 'quanyi-test.db'}"
        return
    server = make_url(TEST_DATABASE_URL)
    name = f"quanyi_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(server: Any, statement: str) -> None:
    from sqlalchemy import text

    engine = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    except Exception as error:
        raise RuntimeError(
            f"QUANYI_TEST_DATABASE_URL is set but PostgreSQL is not usable: {error}"
        ) from error
    finally:
        await engine.dispose()


async def require_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.ping()
    except Exception as error:
        raise RuntimeError(f"QUANYI_TEST_REDIS_URL is set but Redis is not reachable: {error}") from error
    finally:
        await client.aclose()


def new_secret_key() -> bytes:
    return secrets.token_bytes(32)


_measuring: contextvars.ContextVar[bool] = contextvars.ContextVar("measuring", default=False)


@dataclass
class StatementCounter:
    """Counts the SQL statements one awaited action sends to the database.

    Only statements issued from the action's own context count (the tasks it starts
    inherit it), so background work of the app, such as the expiry sweep or a live
    feed of another test, never muddles the figure.
    """

    count: int = 0
    seen: list[str] = field(default_factory=list)

    def attach(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._on_statement)

    def attach_driver(self, driver: Any) -> None:
        """Also count what the order placement sends PostgreSQL's driver directly."""
        driver.listen(lambda statement: self._on_statement(None, None, statement))

    def _on_statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if _measuring.get():
            self.count += 1
            self.seen.append(statement)

    async def measure(self, action: Any) -> tuple[Any, int]:
        self.count, self.seen = 0, []
        token = _measuring.set(True)
        try:
            result = await action
        finally:
            _measuring.reset(token)
        return result, self.count


def without_cost(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer without its `extensions.cost` report, so use-case tests compare what the
    caller asked for; the admission tests read the report from the raw response."""
    extensions = answer.get("extensions")
    if isinstance(extensions, dict) and "cost" in extensions:
        rest = {k: v for k, v in extensions.items() if k != "cost"}
        answer = {k: v for k, v in answer.items() if k != "extensions"}
        if rest:
            answer["extensions"] = rest
    return answer


@dataclass
class GraphQLClient:
    """Posts GraphQL documents to /graphql the way a storefront would."""

    http: httpx.AsyncClient

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        accept: str = "application/graphql-response+json",
    ) -> dict[str, Any]:
        response = await self.post(query, variables, key=key, accept=accept)
        return without_cost(response.json())

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        key: str | None = None,
        accept: str = "application/graphql-response+json",
    ) -> httpx.Response:
        headers = {"accept": accept}
        if key:
            headers["authorization"] = f"Bearer {key}"
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.http.post("/graphql", json=body, headers=headers)
