"""The unit of work: one transaction per command, events published only after commit."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from broker import Broker
from services.core.database import Database
from services.core.driver import Driver


class UnitOfWork:
    """`async with UnitOfWork(db, broker) as uow:` commits on a clean exit, rolls back on an
    exception, and only then publishes what the command recorded with `uow.publish()`.

    The session is opened at its first use (it begins its transaction then, as sessions
    do): a command answered without it, an order refused from memory or written on the
    driver, costs no session at all.
    """

    def __init__(self, db: Database, broker: Broker, on_event: Callable[[str, bytes], None] | None = None) -> None:
        self._db = db
        self._broker = broker
        # Told of each event in this process before it goes out, so local caches
        # never serve this command's own caller something its write made stale.
        self._on_event = on_event
        self._events: list[tuple[str, bytes]] = []
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> UnitOfWork:
        return self

    @property
    def session(self) -> AsyncSession:
        """The command's session; its transaction begins with its first statement."""
        if self._session is None:
            self._session = self._db.sessions()
        return self._session

    @contextlib.asynccontextmanager
    async def fresh_reads(self) -> AsyncIterator[AsyncSession]:
        """A session beside the command's for reads that must not hold its write transaction
        open (on SQLite, the writer lock): `async with uow.fresh_reads() as reads:`. It is
        opened at its first use: reads the process's caches answer open none."""
        reads = _OnFirstUse(self._db.fresh_sessions)
        try:
            yield cast(AsyncSession, reads)
        finally:
            await reads.close()

    def driver(self) -> Driver | None:
        """PostgreSQL's driver without SQLAlchemy, for the hot paths written for it; None on
        SQLite and while tracing (services/core/driver.py)."""
        driver = self._db.driver
        return driver if driver is not None and driver.enabled else None

    def publish(self, topic: str, message: bytes) -> None:
        self._events.append((topic, message))

    async def rollback(self) -> None:
        """Discard the command's writes and its events; the context then exits cleanly."""
        if self._session is not None:
            await self._session.rollback()
        self._events.clear()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        session = self._session
        if session is None:
            if kind is not None:
                self._events.clear()
        else:
            try:
                if kind is None and session.in_transaction():
                    await session.commit()
                else:
                    await session.rollback()
                    self._events.clear()
            finally:
                await session.close()
        for topic, message in self._events:
            if self._on_event is not None:
                self._on_event(topic, message)
            await self._broker.publish(topic, message)
        self._events.clear()


class _OnFirstUse:
    """An AsyncSession made when something first asks it for anything."""

    def __init__(self, make: Callable[[], AsyncSession]) -> None:
        self._make = make
        self._session: AsyncSession | None = None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = self._make()
        return getattr(self._session, name)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
