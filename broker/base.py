"""The Broker protocol: publish bytes on a topic, subscribe to a topic's messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Broker(Protocol):
    async def start(self) -> None:
        """Connect; called once when the gateway starts."""

    async def publish(self, topic: str, message: bytes) -> None:
        """Deliver `message` to every current subscriber of `topic`, in any process."""

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Messages published on `topic` from now on, until the context exits."""

    async def ping(self) -> None:
        """Raise if the broker cannot be reached."""

    async def close(self) -> None:
        """Stop delivering and release connections."""
