"""Engines and session factories for the primary database and an optional read replica."""

from __future__ import annotations

import logging

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Result, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from config import Settings
from services.core.driver import Driver


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; busy_timeout queues writers
    # instead of failing them at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the driver, decide when a transaction begins.
    dbapi_connection.isolation_level = None


def _begin_immediate(connection: Any) -> None:
    # A write transaction takes SQLite's write lock at BEGIN, so two writers queue on
    # busy_timeout instead of both reading and then failing to upgrade their lock.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(url: str, *, pool_size: int = 10, writer: bool = False) -> AsyncEngine:
    backend = make_url(url).get_backend_name()
    # A statement's error never carries its bound values (a buyer's phone, an e-mail, a key's
    # digest) into a log or an error message; the SQL alone says where it failed.
    if backend == "sqlite":
        # Every DataLoader batch opens a session: size the pool for a burst of them, so
        # connections (a thread each with aiosqlite) are reused, not opened per request.
        engine = create_async_engine(
            url, pool_size=5 if writer else 20, max_overflow=10 if writer else 60, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if writer:
            event.listen(engine.sync_engine, "connect", _sqlite_autocommit_driver)
            event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    # No pre-ping: it costs two round trips per checkout. A connection the server dropped
    # fails its statement, SQLAlchemy invalidates it, and the pool replaces it; recycling
    # keeps connections younger than any server or proxy idle timeout.
    # A database that went away: the first statement on a dead connection fails, SQLAlchemy
    # takes every connection made before it for dead too, and the next checkouts connect
    # anew, so a restarted server costs each process the statements in flight, no more.
    # Connecting gives up after 5 s and waiting for a pooled connection after 10 s: while
    # the server is unreachable a request fails (SERVICE_UNAVAILABLE), it does not hang.
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800, pool_timeout=10,
        hide_parameters=True, connect_args={"timeout": 5},
    )


@dataclass(frozen=True)
class Database:
    """The primary (writes, read-your-writes) and the read side (catalog reads)."""

    engine: AsyncEngine
    read_engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    # Reads that must see the caller's own writes: never a lagging replica, and on
    # SQLite not the writer either (its BEGIN IMMEDIATE would queue behind writes).
    fresh_sessions: async_sessionmaker[AsyncSession]
    # PostgreSQL's driver without SQLAlchemy, for the order placement's statements; None on SQLite.
    driver: Driver | None = None

    @classmethod
    def connect(cls, settings: Settings) -> Database:
        engine = create_engine(settings.database_url, writer=True)
        if settings.database_read_url:
            read_engine = create_engine(settings.database_read_url)
        elif settings.is_sqlite:
            # Readers on their own connections: WAL lets them run beside the writer.
            read_engine = create_engine(settings.database_url)
        else:
            read_engine = engine
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        read_sessions = async_sessionmaker(read_engine, expire_on_commit=False)
        return cls(
            engine=engine,
            read_engine=read_engine,
            sessions=sessions,
            read_sessions=read_sessions,
            fresh_sessions=sessions if settings.database_read_url else read_sessions,
            driver=None if settings.is_sqlite else Driver(settings.database_url),
        )

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self.driver is not None:
            await self.driver.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


def rows_changed(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched: how a conditional write tells who won."""
    return cast("CursorResult[Any]", result).rowcount


# asyncpg's names for a connection that is gone (they are not OSErrors).
_CONNECTION_LOST = frozenset({
    "ConnectionDoesNotExistError", "ConnectionFailureError", "CannotConnectNowError", "AdminShutdownError",
    "CrashShutdownError",
})


def unreachable(error: BaseException) -> bool:
    """Whether the error, or one it came from, says the database (or Redis) could not be
    reached: a connection refused, cut or timed out, not a statement that failed."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, TimeoutError, PoolTimeout)):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if type(current).__name__ in _CONNECTION_LOST or type(current).__name__ == "ConnectionError":
            return True
        current = current.__cause__ or current.__context__
    return False


def log_failure(logger: logging.Logger, message: str, error: BaseException) -> None:
    """A background loop's failure: the traceback for a bug, one line for an outage (the
    database restarting would otherwise fill the logs with the same traceback)."""
    if unreachable(error):
        logger.warning("%s (unreachable: %s)", message, type(error).__name__)
    else:
        logger.error(message, exc_info=(type(error), error, error.__traceback__))
