"""A short-lived cache of whole answers to public catalog reads.

A storefront's catalog query is the same for every visitor of a channel, so its
answer can be reused. An entry is keyed by the document, operation, variables and
who asks (role and channel), lives a few seconds at most, and is dropped at once
when the broker carries a catalog, price or stock change from any process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

import orjson
from graphql import FieldNode, OperationDefinitionNode, OperationType

from broker import Broker
from broker.follow import follow
from domain.access import Principal
from services.core.events import CATALOG_CHANGED
from transport.documents import BoundedCache

log = logging.getLogger("quanyi.cache")

# Root fields whose answers depend only on the catalog, prices and stock.
CACHEABLE_ROOT_FIELDS = frozenset({"products", "product", "channels", "__typename"})

Key = tuple[str, str | None, bytes, str | None, str | None]


class Answer(NamedTuple):
    body: bytes  # the encoded answer, `{"data": ...}`
    cost: int  # its actual query cost, charged to every caller it is served to


class ResponseCache:
    """Entries by key, with one computation in flight per key.

    When an entry is missing or stale, the first request computes it and the
    others wait for that answer instead of all running the same query at once.
    """

    def __init__(self, ttl_seconds: float, size: int = 1024) -> None:
        self._ttl = ttl_seconds
        self._entries: BoundedCache[Key, tuple[float, int, Answer]] = BoundedCache(size)
        self._generation = 0
        self._flights: dict[Key, tuple[int, asyncio.Future[Answer | None]]] = {}
        self._broker: Broker | None = None

    @staticmethod
    def key(query: str, operation_name: str | None, variables: object, who: Principal) -> Key | None:
        """The entry's key, or None for a request not worth caching (a buyer's, odd variables)."""
        if who.order_number is not None:
            return None
        try:
            encoded = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS) if variables else b""
        except (TypeError, orjson.JSONEncodeError):
            return None  # nested deeper than the encoder goes: run it, do not cache it
        role = who.role.value if who.role else None
        return (query, operation_name, encoded, role, who.channel)

    def get(self, key: Key) -> Answer | None:
        if self._broker is not None and not self._broker.live:
            return None  # a change elsewhere would go unheard: answer from the database
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, generation, answer = entry
        if generation != self._generation or time.monotonic() - stored_at > self._ttl:
            return None
        return answer

    def put(self, key: Key, answer: Answer) -> None:
        self._entries.put(key, (time.monotonic(), self._generation, answer))

    def in_flight(self, key: Key) -> asyncio.Future[Answer | None] | None:
        """The computation of this key under way, if any; else the caller computes it."""
        flight = self._flights.get(key)
        if flight is not None:
            return flight[1]
        self._flights[key] = (self._generation, asyncio.get_running_loop().create_future())
        return None

    def landed(self, key: Key, answer: Answer | None) -> None:
        """The computation ended: store a cacheable answer and wake the waiters.

        An answer computed across an invalidation is handed to those already
        waiting (they asked before the change) but not stored.
        """
        started, flight = self._flights.pop(key, (None, None))
        if answer is not None and started == self._generation:
            self.put(key, answer)
        if flight is not None and not flight.done():
            flight.set_result(answer)

    def invalidate(self) -> None:
        self._generation += 1

    def on_event(self, topic: str, message: bytes = b"") -> None:
        if topic == CATALOG_CHANGED:
            self.invalidate()

    @staticmethod
    def cacheable(operation: OperationDefinitionNode) -> bool:
        return operation.operation is OperationType.QUERY and all(
            isinstance(selection, FieldNode) and selection.name.value in CACHEABLE_ROOT_FIELDS
            for selection in operation.selection_set.selections
        )

    async def follow(self, broker: Broker) -> None:
        """Invalidate on every catalog change event until cancelled. Without the events the
        cache cannot be trusted: losing them empties it too, and while the broker is down
        nothing is served from it."""
        self._broker = broker
        await follow(broker, CATALOG_CHANGED, lambda _: self.invalidate(), on_lost=self.invalidate,
                     what="catalog change events")
