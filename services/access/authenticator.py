"""Turning a presented key into a principal, with a short cache that revocation clears.

Verifying a key costs a database round trip; partners send thousands of requests a
minute with the same key. Verified keys are remembered for a few seconds, and a
revocation in any process drops them everywhere through the broker. While the broker is
down a revocation elsewhere would go unheard, so every key is then verified in the database,
and what was remembered is dropped when the broker is back.
"""

from __future__ import annotations

import hashlib
import logging
import time

from broker import Broker
from broker.follow import follow
from domain.access import Principal
from services.access.keys import verify_key
from services.access.tokens import PREFIX as ORDER_TOKEN_PREFIX
from services.access.tokens import AccessTokens
from services.core.database import Database

log = logging.getLogger("quanyi.auth")

KEYS_REVOKED = "keys.revoked"


class Authenticator:
    def __init__(
        self, db: Database, broker: Broker, tokens: AccessTokens, ttl_seconds: float = 10.0, size: int = 10_000
    ) -> None:
        self._db = db
        self._broker = broker
        self.tokens = tokens
        self._ttl = ttl_seconds
        self._size = size
        # Keyed by a hash of the key, so the cache never holds a usable key.
        self._known: dict[str, tuple[float, Principal]] = {}

    async def principal(self, credential: str) -> Principal | None:
        if credential.startswith(ORDER_TOKEN_PREFIX):
            number = self.tokens.order_number(credential)
            return Principal(order_number=number) if number else None
        fingerprint = hashlib.sha256(credential.encode()).hexdigest()
        cached = self._known.get(fingerprint)
        if cached is not None and time.monotonic() - cached[0] < self._ttl and self._broker.live:
            return cached[1]
        async with self._db.fresh_sessions() as session:
            principal = await verify_key(session, credential)
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

    async def revoked(self, prefix: str) -> None:
        """Call after a revocation commits: every process forgets the key at once."""
        self.forget_local(prefix)
        await self._broker.publish(KEYS_REVOKED, prefix.encode())

    async def changed(self, prefix: str) -> None:
        """Call after a key's settings (its budget) change: every process reads it again.
        The same announcement as a revocation: both mean "forget what you verified"."""
        await self.revoked(prefix)

    async def follow(self) -> None:
        """Forget revoked keys as revocations are announced, in this process or another."""
        await follow(self._broker, KEYS_REVOKED, lambda prefix: self.forget_local(prefix.decode()),
                     on_lost=self.forget_local, what="key revocation events")
