"""A read replica that serves lag-tolerant reads only while it is reachable and provably fresh.

Which reads may go to the replica is decided by the callers (docs/architecture.md, "Reads
and the replica"): `Database.read_sessions` for catalog and listing reads, `fresh_sessions`
for whatever must see its own writes. This module decides, for each lag-tolerant read,
whether the replica may serve it:

- **Fresh enough.** Every `interval` seconds the watcher reads the primary's flushed WAL
  position, then the position the replica has replayed. A primary position read at moment t
  that the replica has replayed means every commit acknowledged before t is on the replica:
  the replica is *current as of* t. Reads go to the replica only while `now - current_as_of`
  is within `max_lag`, so an answer read there misses no commit older than the bound. A
  replica that stops replaying (paused, or cut off from the primary) stops advancing its
  moment, and within `max_lag` reads move to the primary, by themselves, until it catches up.
  Comparing positions, not `now() - pg_last_xact_replay_timestamp()`, keeps an idle primary
  (nothing to replay) from looking like a lagging replica.
- **Holding what was heard of.** A catalog or price change heard in this process (its own, or
  another's through the broker) sends reads to the primary until the replica is measured
  current as of the moment it was heard: a copy refilled after the change (reference data, a
  cached answer) is never read from a replica that still lacks it. Stock moved by orders is
  left to the bound: in a sale that is a change every few milliseconds.
- **Reachable.** A replica that does not answer the watcher, refuses a connection, or drops
  one mid-statement is set aside at once: reads go to the primary until the watcher reaches
  it again. A read whose connection to the replica fails is served by the primary instead.

Until the watcher has measured once, reads go to the primary. A replica that is not in
recovery (the primary itself, or one just promoted) is current. SQLite has no replication:
a second file named by the read URL is taken as current while it answers (tests use it to
see which engine a read used).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from types import TracebackType
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from broker import Broker
from broker.follow import follow
from services.core import telemetry
from services.core.events import CATALOG_CHANGED, STOCK_BY_ORDERS
from services.core.outage import unreachable

log = logging.getLogger("quanyi.replica")

# Positions as byte offsets, so that they compare as numbers.
_PRIMARY_POSITION = text("SELECT pg_current_wal_flush_lsn() - '0/0'::pg_lsn")
_REPLAYED = text("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn")
_ANSWERS = text("SELECT 1")

# What the replica is doing, as /readyz and the logs say it.
STARTING, OK, LAGGING, UNREACHABLE = "starting", "ok", "lagging", "unreachable"


class Replica:
    """Chooses the engine of each lag-tolerant read: the replica while it is reachable and
    current within `max_lag` seconds, else the primary."""

    def __init__(
        self, primary: AsyncEngine, replica: AsyncEngine, *, max_lag: float, interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag = max_lag
        # Several measurements within the bound, so that a replica that keeps up is never
        # set aside for want of a recent one; no more than one a second otherwise.
        self.interval = interval if interval is not None else min(1.0, max(max_lag / 4, 0.05))
        self._clock = clock
        self._postgres = primary.dialect.name == "postgresql"
        # (moment, primary position) measured and not yet known replayed, oldest first. Dropping
        # the oldest when full only makes `current_as_of` more cautious.
        self._pending: deque[tuple[float, int]] = deque(maxlen=256)
        self._current_as_of: float | None = None
        # A change heard at this moment: until the replica is current as of it, it lacks the change.
        self._floor: float | None = None
        self._down = False
        self.state = STARTING
        event.listen(replica.sync_engine, "handle_error", self._statement_failed)

    # --- routing ----------------------------------------------------------------------------

    def usable(self) -> bool:
        """Whether a read may go to the replica now."""
        current = self._current_as_of
        if self._down or current is None or self._clock() - current > self.max_lag:
            return False
        return self._floor is None or current >= self._floor

    def note_change(self) -> None:
        """A change was committed (an operator's, heard here): reads go to the primary until the
        replica is current as of now, so a copy refilled after the change (reference data, a
        cached answer) is never read from a replica that lacks it."""
        self._floor = self._clock()

    def on_event(self, topic: str, message: bytes = b"") -> None:
        # Stock moved by orders is left to the bound: in a sale that is a change every few
        # milliseconds, and it would keep every read on the primary.
        if topic == CATALOG_CHANGED and message != STOCK_BY_ORDERS:
            self.note_change()

    async def follow(self, broker: Broker) -> None:
        """Hear the catalog changes of every process (a message missed counts as a change)."""
        await follow(broker, CATALOG_CHANGED, lambda message: self.on_event(CATALOG_CHANGED, message),
                     on_lost=self.note_change, what="catalog change events (read replica)")

    def lag(self) -> float | None:
        """Seconds since the replica was last known current (None: never measured)."""
        current = self._current_as_of
        return None if current is None else max(self._clock() - current, 0.0)

    async def replica_connection(self) -> AsyncConnection | None:
        """A connection to the replica if a read may use it now, else None (the primary serves).

        It is taken before the read starts, so a replica that refuses it, or has closed it,
        costs the read nothing but the primary's answer.
        """
        connection = None
        if self.usable():
            try:
                connection = await _live_connection(self.replica)
            except Exception as error:
                if not unreachable(error):
                    raise
                self.lost(error)
        telemetry.replica_read(connection is not None)
        return connection

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection for a lag-tolerant Core read: the replica's while it may serve, else the primary's."""
        connection = await self.replica_connection()
        if connection is None:
            connection = await self.primary.connect()
        try:
            yield connection
        finally:
            await connection.close()

    def sessions(self) -> ReadSession:
        """`async with replica.sessions() as session:` a session on the engine this read may use."""
        return ReadSession(self)

    def lost(self, error: BaseException) -> None:
        """The replica failed a read: set it aside until the watcher reaches it again."""
        if not self._down:
            log.warning("read replica unreachable (%s): reads go to the primary", type(error).__name__)
            telemetry.replica_set_aside(UNREACHABLE)
        self._down = True
        self.state = UNREACHABLE
        telemetry.replica_in_use(False)

    def _statement_failed(self, context: Any) -> None:
        # A connection to the replica dropped mid-statement: the next reads go to the primary.
        if getattr(context, "is_disconnect", False):
            self.lost(context.original_exception)

    # --- measuring --------------------------------------------------------------------------

    async def check(self) -> None:
        """Measure once: where the primary is, and whether the replica has replayed it."""
        moment = self._clock()
        try:
            async with asyncio.timeout(max(self.interval, 2.0)):
                position = await self._primary_position()
        except Exception as error:  # noqa: BLE001 - without the primary nothing is measured
            # No new moment: the replica stays usable only as long as its last one allows.
            log.debug("primary position not read: %s", type(error).__name__)
            if not self._down:
                self._settle()
            return
        try:
            async with asyncio.timeout(max(self.interval, 2.0)):
                replayed = await self._replayed()
        except Exception as error:  # noqa: BLE001 - any failure to answer sets the replica aside
            self.lost(error)
            return
        self._pending.append((moment, position))
        while self._pending and (replayed is None or self._pending[0][1] <= replayed):
            self._current_as_of = self._pending.popleft()[0]
        if self._down:
            log.warning("read replica reachable again")
            self._down = False
        self._settle()

    def _settle(self) -> None:
        lag = self.lag()
        telemetry.replica_lag(lag)
        state = OK if lag is not None and lag <= self.max_lag else LAGGING
        if state != self.state:
            if state == LAGGING:
                log.warning("read replica %.1f s behind (bound %.1f s): reads go to the primary until it catches up",
                            lag or 0.0, self.max_lag)
                telemetry.replica_set_aside(LAGGING)
            else:
                log.info("read replica current: it serves catalog and listing reads")
            self.state = state
        telemetry.replica_in_use(self.usable())

    async def _primary_position(self) -> int:
        if not self._postgres:
            return 0
        async with self.primary.connect() as connection:
            return int(Decimal(await connection.scalar(_PRIMARY_POSITION)))

    async def _replayed(self) -> int | None:
        """The replayed position; None for a server that replays nothing (it is current)."""
        async with self.replica.connect() as connection:
            if not self._postgres:
                await connection.execute(_ANSWERS)
                return None
            recovering, replayed = (await connection.execute(_REPLAYED)).one()
        if not recovering or replayed is None:
            return None
        return int(Decimal(replayed))

    async def watch(self) -> None:
        """Measure every `interval` seconds until cancelled."""
        while True:
            await self.check()
            await asyncio.sleep(self.interval)

    def describe(self) -> dict[str, object]:
        """What /readyz says of the replica."""
        lag = self.lag()
        usable = self.usable()
        state = LAGGING if self.state == OK and (lag is None or lag > self.max_lag) else self.state
        return {
            "status": state,
            "servedBy": "replica" if usable else "primary",
            "lagSeconds": None if lag is None else round(lag, 3),
            "maxLagSeconds": self.max_lag,
        }


class ReadSession:
    """One lag-tolerant read's session, on the replica when it may serve it, else the primary."""

    __slots__ = ("_connection", "_replica", "_session")

    def __init__(self, replica: Replica) -> None:
        self._replica = replica
        self._connection: AsyncConnection | None = None
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> AsyncSession:
        self._connection = await self._replica.replica_connection()
        if self._connection is not None:
            self._session = AsyncSession(bind=self._connection, expire_on_commit=False, info={"replica": True})
        else:
            self._session = AsyncSession(bind=self._replica.primary, expire_on_commit=False)
        return self._session

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._session is not None:
                await self._session.close()
        finally:
            if self._connection is not None:
                with contextlib.suppress(Exception):  # a dropped connection: the pool replaces it
                    await self._connection.close()


class _Closed(ConnectionError):
    """The replica closed the pooled connection (it stopped or restarted)."""


async def _live_connection(engine: AsyncEngine) -> AsyncConnection:
    """A connection of the replica's pool that the server has not closed.

    A stopped or restarted server closes its connections; the driver knows without a round
    trip, so a read does not find out by failing its first statement.
    """
    connection = await engine.connect()
    try:
        raw = await connection.get_raw_connection()
        closed = getattr(raw.driver_connection, "is_closed", None)
        if closed is not None and closed():
            await connection.invalidate()
            raise _Closed("the read replica closed the connection")
    except BaseException:
        await connection.close()
        raise
    return connection


def on_replica(session: AsyncSession) -> bool:
    """Whether a lag-tolerant read's session is on the replica (a failed read may retry on the primary)."""
    return bool(session.info.get("replica"))
