"""Turning a presented key into a principal, with a short cache that revocation clears.

Verifying a key costs a database round trip; partners send thousands of requests a
minute with the same key. Verified keys are remembered for a few seconds, and a
revocation in any process drops them everywhere through the broker. While the broker is
down a revocation elsewhere would go unheard, so every key is then verified in the database,
and what was remembered is dropped when the broker is back.

The broker is not trusted to deliver every announcement (a Redis blip loses what was
published during it), so the database has the last word within a bounded time: cached
entries live at most `ttl_seconds`, and `recheck` (run every second by the WebSocket
watch, transport/sockets.py) asks the database in one statement which of the keys this
process still trusts were revoked or expired meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from broker import Broker
from broker.follow import follow
from domain.access import Principal
from services.access.keys import still_valid, verify_key
from services.access.tokens import PREFIX as ORDER_TOKEN_PREFIX
from services.access.tokens import AccessTokens
from services.core.database import Database

log = logging.getLogger("quanyi.auth")

KEYS_REVOKED = "keys.revoked"

# Keys asked about in one statement at most; a process trusting more asks in several.
RECHECK_BATCH = 500

Listener = Callable[[str | None], None]


class Authenticator:
    def __init__(
        self, db: Database, broker: Broker, tokens: AccessTokens, ttl_seconds: float = 5.0, size: int = 10_000
    ) -> None:
        self._db = db
        self._broker = broker
        self.tokens = tokens
        self._ttl = ttl_seconds
        self._size = size
        # Keyed by a hash of the key, so the cache never holds a usable key.
        self._known: dict[str, tuple[float, Principal]] = {}
        self._listeners: list[Listener] = []

    async def principal(self, credential: str) -> Principal | None:
        if credential.startswith(ORDER_TOKEN_PREFIX):
            number = self.tokens.order_number(credential)
            return Principal(order_number=number) if number else None
        fingerprint = hashlib.sha256(credential.encode()).hexdigest()
        cached = self._known.get(fingerprint)
        now = datetime.now(UTC)
        if (cached is not None and time.monotonic() - cached[0] < self._ttl and not cached[1].expired(now)
                and self._broker.live):
            return cached[1]
        async with self._db.fresh_sessions() as session:
            principal = await verify_key(session, credential, now)
        if principal is None:
            self._known.pop(fingerprint, None)
            return None
        if len(self._known) >= self._size:
            self._known.clear()
        self._known[fingerprint] = (time.monotonic(), principal)
        return principal

    def forget_local(self, prefix: str | None = None) -> None:
        if prefix is None:
            self._known.clear()
            return
        for fingerprint, (_, principal) in list(self._known.items()):
            if principal.key_prefix == prefix:
                del self._known[fingerprint]

    def listen(self, listener: Listener) -> None:
        """`listener(prefix)` hears of every announced change of a key (None: of any key,
        after announcements may have been missed), in this process or another."""
        self._listeners.append(listener)

    def _announced(self, prefix: str | None) -> None:
        self.forget_local(prefix)
        for listener in self._listeners:
            listener(prefix)

    async def revoked(self, prefix: str) -> None:
        """Call after a revocation commits: every process forgets the key at once."""
        self._announced(prefix)
        try:
            await self._broker.publish(KEYS_REVOKED, prefix.encode())
        except Exception:
            # Committed all the same: the other processes find it in their next recheck.
            log.warning("could not announce a key change; other processes recheck it within seconds", exc_info=True)

    async def changed(self, prefix: str) -> None:
        """Call after a key's settings (its budget) change: every process reads it again.
        The same announcement as a revocation: both mean "forget what you verified"."""
        await self.revoked(prefix)

    async def recheck(self, prefixes: Iterable[str] = ()) -> set[str]:
        """Which of these keys, and of the keys this process has cached, the database no
        longer honours (revoked, expired, gone); they are forgotten here."""
        now_monotonic = time.monotonic()
        asked = set(prefixes)
        for fingerprint, (verified_at, principal) in list(self._known.items()):
            if now_monotonic - verified_at >= self._ttl:
                del self._known[fingerprint]  # stale: the next use verifies it again anyway
            elif principal.key_prefix is not None:
                asked.add(principal.key_prefix)
        if not asked:
            return set()
        now = datetime.now(UTC)
        ordered = sorted(asked)
        valid: set[str] = set()
        async with self._db.fresh_sessions() as session:
            for start in range(0, len(ordered), RECHECK_BATCH):
                valid |= await still_valid(session, ordered[start:start + RECHECK_BATCH], now)
        ended = asked - valid
        for prefix in ended:
            self.forget_local(prefix)
        return ended

    async def follow(self) -> None:
        """Forget revoked keys as revocations are announced, in this process or another."""
        await follow(self._broker, KEYS_REVOKED, lambda prefix: self._announced(prefix.decode()),
                     on_lost=lambda: self._announced(None), what="key revocation events")
