"""Shared state in Redis, with this process's own as the fallback while Redis is away.

Counters and budgets kept in Redis are shared by every gateway process. When Redis cannot
be reached, refusing every order or request would turn a cache outage into a shop outage,
and letting everything through would open the door to the floods the counters exist to
stop. So each process falls back to its own counters (the in-memory implementation of the
same protocol): limits still hold, per process rather than across them, and Redis is tried
again a second later. No request waits for an unreachable Redis more than once a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from broker.redis_client import UNREACHABLE

log = logging.getLogger("quanyi.fallback")

T = TypeVar("T")


class Fallback:
    def __init__(self, what: str, *, retry_seconds: float = 1.0) -> None:
        self._what = what
        self._retry = retry_seconds
        self._down_until: float | None = None  # None: Redis answered last time

    @property
    def degraded(self) -> bool:
        return self._down_until is not None

    async def call(self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        now = time.monotonic()
        if self._down_until is not None and now < self._down_until:
            return await local()
        try:
            result = await shared()
        except UNREACHABLE as error:
            if self._down_until is None:
                log.warning("%s: Redis cannot be reached (%s); this process counts on its own until it is back",
                            self._what, type(error).__name__)
            self._down_until = now + self._retry
            return await local()
        if self._down_until is not None:
            log.warning("%s: Redis is back; counting there again", self._what)
            self._down_until = None
        return result
