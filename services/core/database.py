"""Engines and session factories for the primary database and an optional read replica."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import Any, cast

from sqlalchemy import CursorResult, Result, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from config import Settings
from services.core.driver import Driver
from services.core.outage import log_failure as log_failure
from services.core.outage import unreachable as unreachable
from services.core.replica import Replica


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


def create_engine(
    url: str, *, pool_size: int = 10, writer: bool = False, connect_timeout: float = 5.0
) -> AsyncEngine:
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
        hide_parameters=True, connect_args={"timeout": connect_timeout},
    )


# A read replica that does not answer within this is set aside and its read served by the
# primary: waiting the primary's 5 s would make every read of a vanished replica that slow.
REPLICA_CONNECT_TIMEOUT = 2.0

ReadSessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True)
class Database:
    """The primary (writes, read-your-writes) and the read side (catalog and listing reads).

    `sessions`: the primary, for units of work. `fresh_sessions`: reads that must see every
    commit (a buyer's order, a mutation's answer, keys, jobs). `read_sessions`: reads that
    tolerate a bounded lag; with a read replica configured they go to it while it is
    reachable and current within `QUANYI_READ_MAX_LAG_SECONDS` (services/core/replica.py),
    else to the primary. docs/architecture.md says which read uses which.
    """

    engine: AsyncEngine
    # The engine lag-tolerant reads use when nothing sets them aside: the replica's if there
    # is one, else the primary's readers.
    read_engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: ReadSessions
    # Reads that must see the caller's own writes: never a lagging replica, and on
    # SQLite not the writer either (its BEGIN IMMEDIATE would queue behind writes).
    fresh_sessions: async_sessionmaker[AsyncSession]
    # PostgreSQL's driver without SQLAlchemy, for the order placement's statements; None on SQLite.
    driver: Driver | None = None
    replica: Replica | None = None  # None: no read replica configured

    @classmethod
    def connect(cls, settings: Settings) -> Database:
        engine = create_engine(settings.database_url, writer=True)
        # Readers of the primary on their own connections on SQLite: WAL lets them run beside the writer.
        primary_reads = create_engine(settings.database_url) if settings.is_sqlite else engine
        fresh_sessions = async_sessionmaker(primary_reads, expire_on_commit=False)
        replica = None
        read_sessions: ReadSessions = fresh_sessions
        read_engine = primary_reads
        if settings.database_read_url:
            read_engine = create_engine(settings.database_read_url, connect_timeout=REPLICA_CONNECT_TIMEOUT)
            replica = Replica(primary_reads, read_engine, max_lag=settings.read_max_lag_seconds)
            read_sessions = replica.sessions
        return cls(
            engine=engine,
            read_engine=read_engine,
            sessions=async_sessionmaker(engine, expire_on_commit=False),
            read_sessions=read_sessions,
            fresh_sessions=fresh_sessions,
            driver=None if settings.is_sqlite else Driver(settings.database_url),
            replica=replica,
        )

    def engines(self) -> dict[str, AsyncEngine]:
        """Each engine once, by its pool's name: primary, reads (SQLite's readers), replica."""
        found = {"primary": self.engine}
        primary_reads = self.fresh_sessions.kw["bind"]
        if primary_reads is not self.engine:
            found["reads"] = primary_reads
        if self.replica is not None:
            found["replica"] = self.replica.replica
        return found

    def read_connection(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for lag-tolerant Core reads (catalog pages): the replica's while it may
        serve them, else the primary's readers."""
        if self.replica is not None and self.read_sessions is not self.fresh_sessions:
            return self.replica.connection()
        return self.fresh_sessions.kw["bind"].connect()  # type: ignore[no-any-return]

    def primary_only(self) -> Database:
        """This database with every read on the primary: the view of an operation that writes,
        whose answer must show what it wrote."""
        if self.read_sessions is self.fresh_sessions:
            return self
        return replace(self, read_sessions=self.fresh_sessions)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self.driver is not None:
            await self.driver.close()
        for engine in self.engines().values():
            await engine.dispose()


def rows_changed(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched: how a conditional write tells who won."""
    return cast("CursorResult[Any]", result).rowcount
