"""Who listens to which events, kept per process, so that a status change nobody listens
to costs the database nothing.

Every order's transitions ask it; the endpoints are few and change rarely. So each process
keeps the enabled endpoints (id, channel, events) in memory and forgets them when they
change: at once in the process that changed them (`forget`), through the broker
(`webhooks.changed`) in the others, and at the latest after `TTL_SECONDS` whatever was
missed (a lost broker message, a row changed by hand). A stale entry can only be an
endpoint that was removed or disabled meanwhile: the delivery's INSERT reads the endpoint
row again and writes nothing for it (services/webhooks/events.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from broker import Broker
from broker.follow import follow
from models import WebhookEndpoint

TOPIC = "webhooks.changed"
TTL_SECONDS = 10.0

Audience = list[tuple[int, list[str]]]  # endpoint ids and the events each listens to


class Audiences:
    def __init__(self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._clock = ttl, clock
        self._rows: list[tuple[int, int | None, list[str]]] | None = None
        self._loaded_at = 0.0
        self._version = 0

    def forget(self) -> None:
        self._rows = None
        self._version += 1

    async def of(self, session: AsyncSession, channel_id: int | None) -> Audience:
        """The endpoints that hear events of `channel_id` (None: the channel-less events)."""
        rows = self._rows
        if rows is None or self._clock() - self._loaded_at > self._ttl:
            version = self._version
            rows = [(endpoint_id, channel, list(events)) for endpoint_id, channel, events in await session.execute(
                select(WebhookEndpoint.id, WebhookEndpoint.channel_id, WebhookEndpoint.events)
                .where(WebhookEndpoint.enabled.is_(True))
            )]
            if version == self._version:  # not forgotten while it was read
                self._rows, self._loaded_at = rows, self._clock()
        return [(endpoint_id, events) for endpoint_id, channel, events in rows
                if channel is None or (channel_id is not None and channel == channel_id)]

    def silent(self) -> bool | None:
        """Whether no enabled endpoint hears anything at all, as last read (None: not read, or
        read too long ago). A path written without the events in it asks this first."""
        rows = self._rows
        if rows is None or self._clock() - self._loaded_at > self._ttl:
            return None
        return not rows

    async def follow(self, broker: Broker) -> None:
        await follow(broker, TOPIC, lambda _: self.forget(), on_lost=self.forget, what="webhook endpoint changes")


# One per process: order transitions deep in the services read it (services/orders/events.py).
AUDIENCES = Audiences()
