"""The gateway's HTTP/1.1 connections: uvicorn's own protocol, each answer sent in one write.

uvicorn writes an answer's status line and headers when the application starts it, and
its body when the application sends that: two sends on the socket for nearly every answer,
each a trip through the kernel's TCP stack (on loopback the receiver's side is run in the
sender's call too). On a refused flash-sale attempt, whose whole cost is a few tenths of a
millisecond, that second send is about a fortieth of it.

`OneSendHttp` is uvicorn's httptools protocol with the connection's transport behind
`HeldWrites`: a write is held until the connection's next write, which goes with it in one
send, or until the event loop's current turn ends. The headers and body of an answer leave
together; nothing waits past the turn it was written in, and the order of the bytes on the
connection is the order they were written. A WebSocket upgrade hands the protocol that
follows the transport itself, so frames go as uvicorn writes them.

`quanyi serve` runs with it; `uvicorn gateway:create_app --factory` serves the same
application with uvicorn's stock protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeldWrites:
    """A transport whose writes are held one at a time: the next write, closing, or the end of
    the loop's turn sends what is held (a buffer the caller does not change after writing,
    as uvicorn's are). Everything else is the transport's own."""

    __slots__ = ("transport", "_loop", "_held", "_due")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._due = False  # a send at the end of the turn is scheduled

    def write(self, data: bytes) -> None:
        if not data:
            return
        held = self._held
        if held is None:
            self._held = data
            if not self._due:
                self._due = True
                self._loop.call_soon(self._turn_ended)
            return
        self._held = None
        self.transport.writelines((held, data))

    def writelines(self, lines: Iterable[bytes]) -> None:
        self.write(b"".join(lines))

    def flush(self) -> None:
        """Sends what is held now."""
        held, self._held = self._held, None
        if held is not None and not self.transport.is_closing():
            self.transport.write(held)

    def _turn_ended(self) -> None:
        self._due = False
        self.flush()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self._held = None
        self.transport.abort()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class OneSendHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, an answer's writes held and sent together (HeldWrites)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._held = HeldWrites(transport, self.loop)
        super().connection_made(self._held)  # type: ignore[arg-type]

    def handle_websocket_upgrade(self) -> None:
        # Nothing of this request was answered yet; the WebSocket protocol writes its frames
        # to the socket's own transport.
        self._held.flush()
        self.transport = self._held.transport
        super().handle_websocket_upgrade()
