"""A short-lived cache of whole answers to public catalog reads.

A storefront's catalog query is the same for every visitor of a channel, so its
answer can be reused. An entry is keyed by the document, operation, variables and
who asks (role and channel).

- A change of the catalog, a price, a limit, or stock an operator moved (codes imported,
  a quota set) drops every entry at once, in every process, when the broker carries it.
- Stock that buyers move (orders reserving, releasing, selling) does not: during a sale
  that is a change every few milliseconds, and dropping the cache on each one would send
  every read to the database just when traffic peaks. Instead no answer is served more
  than `max_age` seconds (the stock bound, 1 s by default) after its computation began,
  whatever events were heard or missed, so the stock it shows is never further behind
  the database than that, in any process.
- Past half its age, the next request starts the computation of the entry's successor in
  a task of its own and is served the entry, like everyone else meanwhile: a page in demand
  is renewed about twice per bound, and no reader waits for a renewal. Only a reader that
  finds the entry past its bound (the successor not yet landed) waits, for that successor,
  which began within the bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any, NamedTuple

import orjson
from graphql import FieldNode, OperationDefinitionNode, OperationType

from broker import Broker
from broker.follow import follow
from domain.access import Principal
from services.core.events import CATALOG_CHANGED, STOCK_BY_ORDERS
from transport.documents import BoundedCache

log = logging.getLogger("quanyi.cache")

# Root fields whose answers depend only on the catalog, prices and stock.
CACHEABLE_ROOT_FIELDS = frozenset({"products", "product", "channels", "__typename"})

Key = tuple[str, str | None, bytes, str | None, str | None]


class Answer(NamedTuple):
    body: bytes  # the encoded answer, `{"data": ...}`
    cost: int  # its actual query cost, charged to every caller it is served to


class _Entry(NamedTuple):
    started: float  # monotonic time its computation began: nothing it shows is older
    generation: int
    answer: Answer


class _Flight(NamedTuple):
    started: float
    generation: int
    done: asyncio.Future[Answer | None]


class ResponseCache:
    """Entries by key, with one computation in flight per key.

    When an entry is missing or too old, the first request computes it and the others
    wait for that answer instead of all running the same query at once. When an entry is
    due for renewal but still within its age, the first request computes its successor
    and the others are served the entry meanwhile.
    """

    def __init__(self, max_age: float, size: int = 1024) -> None:
        self._max_age = max_age
        self._renew_after = max_age / 2
        self._entries: BoundedCache[Key, _Entry] = BoundedCache(size)
        self._generation = 0
        self._flights: dict[Key, _Flight] = {}
        self._renewals: set[asyncio.Task[None]] = set()
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
        if entry.generation != self._generation or time.monotonic() - entry.started > self._max_age:
            return None
        return entry.answer

    def put(self, key: Key, answer: Answer, started: float | None = None) -> None:
        self._entries.put(key, _Entry(time.monotonic() if started is None else started, self._generation, answer))

    def due(self, key: Key) -> bool:
        """Whether the caller, holding a servable entry, should have its successor computed
        (`renew`): past the entry's renewal point, with no computation for the key under way."""
        entry = self._entries.get(key)
        return entry is not None and key not in self._flights and time.monotonic() - entry.started >= self._renew_after

    def renew(self, key: Key, compute: Coroutine[Any, Any, Answer | None]) -> None:
        """Computes the entry's successor in a task of its own (the caller serves the entry).

        `compute` answers None for an answer not to keep (errors); what it raises is logged
        and lands as None, so the next reader past the bound computes the answer itself.
        """
        self._start(key)
        task = asyncio.get_running_loop().create_task(self._renewing(key, compute))
        self._renewals.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._renewals.discard)

    async def _renewing(self, key: Key, compute: Coroutine[Any, Any, Answer | None]) -> None:
        answer: Answer | None = None
        try:
            answer = await compute
        except Exception:
            log.exception("renewing a cached answer failed")
        finally:
            self.landed(key, answer)

    async def close(self) -> None:
        """Cancels the renewals under way (at shutdown)."""
        for task in list(self._renewals):
            task.cancel()
        await asyncio.gather(*self._renewals, return_exceptions=True)

    def in_flight(self, key: Key) -> asyncio.Future[Answer | None] | None:
        """The computation of this key under way, if any; else the caller computes it."""
        flight = self._flights.get(key)
        if flight is not None:
            return flight.done
        self._start(key)
        return None

    def _start(self, key: Key) -> None:
        self._flights[key] = _Flight(time.monotonic(), self._generation, asyncio.get_running_loop().create_future())

    def landed(self, key: Key, answer: Answer | None) -> None:
        """The computation ended: store a cacheable answer and wake the waiters.

        An answer computed across an invalidation is handed to those already
        waiting (they asked before the change) but not stored.
        """
        flight = self._flights.pop(key, None)
        if flight is None:
            return
        if answer is not None and flight.generation == self._generation:
            # Its age counts from when the computation began: what it read is at least that fresh.
            self.put(key, answer, flight.started)
        if not flight.done.done():
            flight.done.set_result(answer)

    def invalidate(self) -> None:
        self._generation += 1

    def on_event(self, topic: str, message: bytes = b"") -> None:
        # Stock moved by orders is covered by the age bound; everything else drops the entries.
        if topic == CATALOG_CHANGED and message != STOCK_BY_ORDERS:
            self.invalidate()

    @staticmethod
    def cacheable(operation: OperationDefinitionNode) -> bool:
        return operation.operation is OperationType.QUERY and all(
            isinstance(selection, FieldNode) and selection.name.value in CACHEABLE_ROOT_FIELDS
            for selection in operation.selection_set.selections
        )

    async def follow(self, broker: Broker) -> None:
        """Invalidate on catalog change events until cancelled. Without the events the
        cache cannot be trusted: losing them empties it too, and while the broker is down
        nothing is served from it."""
        self._broker = broker
        await follow(broker, CATALOG_CHANGED, lambda message: self.on_event(CATALOG_CHANGED, message),
                     on_lost=self.invalidate, what="catalog change events")
