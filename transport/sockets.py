"""This process's open WebSocket connections: counted per client address, ended with their key.

A connection authenticates once (its `connection_init` payload, or the upgrade request's
`Authorization` header) and may stay open for hours, so a key's revocation or expiry must
reach the connections that hold it, or they would go on ordering and revealing codes:

- an announced change of a key (the broker's `keys.revoked`, from any process) wakes the
  watch at once;
- whatever the broker lost, the watch asks the database every `interval` seconds, in one
  statement, which keys of open connections (and of the key cache) are still honoured
  (services/access/authenticator.py, `recheck`).

Each connection of a key that is no longer honoured is closed with 4403 after its
operations are stopped. Connections are also counted per client address (the one
QUANYI_TRUSTED_PROXIES defines), so one address cannot hold the process's sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.access import Principal
from services.access.authenticator import Authenticator
from services.core.database import log_failure

log = logging.getLogger("quanyi.ws")

KEY_ENDED = 4403
KEY_ENDED_REASON = "API key revoked or expired"
TOO_MANY = 4429
TOO_MANY_REASON = "Too many connections from this address"

End = Callable[[int, str], Awaitable[None]]


async def _not_yet(code: int, reason: str) -> None:
    """A connection whose handler has not started has nothing to stop."""


@dataclass(eq=False)
class Socket:
    """One open connection: where it comes from, the key it holds, how to end it."""

    address: str | None
    end: End = _not_yet
    key_prefix: str | None = None
    expires_at: datetime | None = None
    ended: bool = False


class OpenSockets:
    def __init__(self, authenticator: Authenticator, *, per_address: int, interval: float) -> None:
        self._authenticator = authenticator
        self._per_address = per_address  # 0: no cap
        self._interval = interval
        self._by_address: dict[str | None, int] = {}
        self._by_key: dict[str, set[Socket]] = {}
        self._wake = asyncio.Event()
        authenticator.listen(lambda _prefix: self._wake.set())

    def open(self, address: str | None) -> Socket | None:
        """A new connection from `address`, or None when that address holds its cap."""
        held = self._by_address.get(address, 0)
        if self._per_address and held >= self._per_address:
            return None
        self._by_address[address] = held + 1
        return Socket(address)

    def authenticated(self, socket: Socket, principal: Principal) -> None:
        """The connection acts for `principal` from now on."""
        self._forget_key(socket)
        if principal.key_prefix is not None:
            socket.key_prefix, socket.expires_at = principal.key_prefix, principal.expires_at
            self._by_key.setdefault(principal.key_prefix, set()).add(socket)

    def closed(self, socket: Socket) -> None:
        self._forget_key(socket)
        held = self._by_address.get(socket.address, 0) - 1
        if held > 0:
            self._by_address[socket.address] = held
        else:
            self._by_address.pop(socket.address, None)

    def count(self, address: str | None = None) -> int:
        return self._by_address.get(address, 0)

    def _forget_key(self, socket: Socket) -> None:
        if socket.key_prefix is None:
            return
        holders = self._by_key.get(socket.key_prefix)
        if holders is not None:
            holders.discard(socket)
            if not holders:
                del self._by_key[socket.key_prefix]
        socket.key_prefix = None

    async def end_keys(self, prefixes: set[str]) -> int:
        """Close every connection holding one of these keys with 4403; how many closed."""
        ending = [socket for prefix in prefixes for socket in self._by_key.get(prefix, ())]
        for socket in ending:
            socket.ended = True
            self._forget_key(socket)
        for socket in ending:
            with contextlib.suppress(Exception):  # already closing on its own
                await socket.end(KEY_ENDED, KEY_ENDED_REASON)
        return len(ending)

    async def check(self) -> None:
        """One round: expired keys here, then what the database no longer honours."""
        now = datetime.now(UTC)
        expired = {prefix for prefix, sockets in self._by_key.items()
                   if any(s.expires_at is not None and s.expires_at <= now for s in sockets)}
        ended = await self._authenticator.recheck(self._by_key.keys())
        closed = await self.end_keys(expired | ended)
        if closed:
            log.info("closed %d WebSocket connection(s) whose key was revoked or expired", closed)

    async def watch(self) -> None:
        """Check at every announcement and at least every `interval` seconds, until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The database is away: keep the connections, try again next round.
                log_failure(log, "could not recheck the keys of open WebSocket connections", error)


# The connection the current task serves: set by the view before strawberry's handler runs.
current: contextvars.ContextVar[Socket | None] = contextvars.ContextVar("quanyi_socket", default=None)
