"""The Broker protocol: publish bytes on a topic, subscribe to a topic's messages.

Delivery is at most once. A subscriber whose messages may have been lost (the Redis
connection dropped, or came back) is told so: its iterator raises `MessagesLost`, and it
must then drop whatever it derived from messages and read the current state, then
subscribe again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class MessagesLost(Exception):
    """Messages published on the topic may have been missed: state derived from them is stale."""


class Broker(Protocol):
    @property
    def live(self) -> bool:
        """Whether messages are flowing: False while the broker cannot be reached, when a
        change elsewhere may go unheard (caches fed by messages must not be trusted)."""

    async def start(self) -> None:
        """Connect; called once when the gateway starts. A broker that cannot be reached
        does not stop the gateway: it is not `live` until it can."""

    async def publish(self, topic: str, message: bytes) -> None:
        """Deliver `message` to every current subscriber of `topic`, in any process. Never
        raises for a broker that cannot be reached: the message then reaches this process's
        subscribers only (publishing follows a commit, which must not turn into an error)."""

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Messages published on `topic` from now on, until the context exits."""

    async def ping(self) -> None:
        """Raise if the broker cannot be reached."""

    async def close(self) -> None:
        """Stop delivering and release connections."""
