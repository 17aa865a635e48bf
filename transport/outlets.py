"""Writing subscription messages to one WebSocket connection without a task per message.

A stock change reaches thousands of subscribers of one process; the group that delivers it
(transport/fanout.py) hands each subscriber's connection its message through an `Outlet`,
in one loop, and never waits for a connection:

- `DirectOutlet`, when the connection is uvicorn's default WebSocket protocol: the text frame
  is built here (a header and the message; the server does not mask) and written to the
  connection's transport at once, as `websockets.broadcast` does. Every other message of the
  connection (acks, pongs, errors, `complete`, closing) still goes through ASGI; both write
  whole frames to the same transport, so they never interleave within a frame. A frame
  without the compression bit is valid on a connection that negotiated permessage-deflate.
- `QueuedOutlet`, on any other server: a queue per connection and a task that sends it through
  ASGI while it is not empty.

Each connection may hold `limit` bytes written but not yet taken by its client. A slow client
over it is closed with 1008 (`SLOW`): it never holds up the others, nor grows the process's
memory, and the client reconnects and subscribes again to the current figures.

`SocketSend` keeps the server's own ASGI `send` of each WebSocket connection in its scope,
before any middleware wraps it: that is how a `DirectOutlet` finds the transport.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

SLOW = 1008
SLOW_REASON = "Too slow to read its messages"
SEND_KEY = "quanyi.socket_send"

_TEXT_FIN = 0x81


class Outlet(Protocol):
    def write(self, prefix: bytes, payload: bytes) -> None:
        """Send the text message `prefix + payload + b"}"`, never waiting."""

    async def drained(self) -> None:
        """Until what was written has been handed to the server."""


class SocketSend:
    """The outermost middleware: keeps a WebSocket connection's own `send` in its scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SEND_KEY] = send
        await self.app(scope, receive, send)


def outlet_for(
    scope: Scope, send_text: Callable[[str], Awaitable[None]], too_slow: Callable[[], None], limit: int
) -> Outlet:
    """The fastest outlet the connection's server allows."""
    server = getattr(scope.get(SEND_KEY), "__self__", None)
    if isinstance(server, WebSocketsSansIOProtocol):
        return DirectOutlet(server, too_slow, limit)
    return QueuedOutlet(send_text, too_slow, limit)


def _header(length: int) -> bytes:
    if length < 126:
        return bytes((_TEXT_FIN, length))
    if length < 1 << 16:
        return bytes((_TEXT_FIN, 126)) + length.to_bytes(2, "big")
    return bytes((_TEXT_FIN, 127)) + length.to_bytes(8, "big")


class DirectOutlet:
    __slots__ = ("_limit", "_server", "_too_slow")

    def __init__(self, server: WebSocketsSansIOProtocol, too_slow: Callable[[], None], limit: int) -> None:
        self._server, self._too_slow, self._limit = server, too_slow, limit

    def write(self, prefix: bytes, payload: bytes) -> None:
        server = self._server
        transport = server.transport
        if server.close_sent or server.disconnected or transport.is_closing():
            return  # closing: the connection's own task ends its subscriptions
        if transport.get_write_buffer_size() > self._limit:
            self._too_slow()
            return
        transport.write(b"".join((_header(len(prefix) + len(payload) + 1), prefix, payload, b"}")))

    async def drained(self) -> None:
        return  # written at once


class QueuedOutlet:
    __slots__ = ("_closed", "_limit", "_messages", "_queued", "_send_text", "_sender", "_too_slow")

    def __init__(self, send_text: Callable[[str], Awaitable[None]], too_slow: Callable[[], None], limit: int) -> None:
        self._send_text, self._too_slow, self._limit = send_text, too_slow, limit
        self._messages: deque[bytes] = deque()
        self._queued = 0
        self._sender: asyncio.Task[None] | None = None
        self._closed = False

    def write(self, prefix: bytes, payload: bytes) -> None:
        if self._closed:
            return
        message = b"".join((prefix, payload, b"}"))
        if self._queued + len(message) > self._limit:
            self._closed = True
            self._messages.clear()
            self._too_slow()
            return
        self._messages.append(message)
        self._queued += len(message)
        if self._sender is None:
            self._sender = asyncio.create_task(self._send(), name="ws-outlet")

    async def _send(self) -> None:
        try:
            while self._messages:
                message = self._messages.popleft()
                self._queued -= len(message)
                await self._send_text(message.decode())
        except Exception:
            # The client has gone: its connection's own task ends its subscriptions.
            self._closed = True
            self._messages.clear()
        finally:
            self._sender = None

    async def drained(self) -> None:
        sender = self._sender
        if sender is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(sender)
