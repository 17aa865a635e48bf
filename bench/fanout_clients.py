"""WebSocket subscribers for the fan-out benchmark, many to a process, on a bare asyncio protocol.

A WebSocket client library spends more CPU per message than the broadcast it measures, and
the clients share the machine with the server. Each subscriber here is an asyncio protocol
that does the opening handshake and graphql-transport-ws by hand (`connection_init`, then
`subscribe` once acknowledged), answers the server's pings, and for every `next` notes the
time since the `at` the message carries: the latency from the change to this client. Server
and clients run on one machine, so they read one clock.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import resource
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, cast

TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


@dataclass(frozen=True, slots=True)
class ClientPlan:
    host: str
    port: int
    path: str
    subprotocol: str
    init: bytes  # the connection_init message
    subscribe: bytes  # the subscribe message, sent once the connection is acknowledged
    count: int  # subscribers this process opens
    connecting: int = 32  # handshakes in flight at once, so the server's backlog never overflows


@dataclass(slots=True)
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, one per delivery
    sample: bytes = b""  # one delivered message, as sent


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def frame(opcode: int, payload: bytes) -> bytes:
    """A client frame: final, masked (RFC 6455 requires clients to mask)."""
    mask = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    key = (mask * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")
    return head + mask + masked


def latency_of(message: bytes, received: float) -> float | None:
    """Seconds from the message's `at` to `received`; None when it carries no `at`."""
    start = message.find(b'"at"')
    if start < 0:
        return None
    first = message.find(b'"', start + 4) + 1
    last = message.find(b'"', first)
    return received - datetime.fromisoformat(message[first:last].decode()).timestamp()


class Subscriber(asyncio.Protocol):
    def __init__(self, plan: ClientPlan, tally: Tally) -> None:
        self._plan = plan
        self._tally = tally
        self._buffer = bytearray()
        self._upgraded = False
        self._fragments = bytearray()
        self._transport: asyncio.Transport | None = None
        self.subscribed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = writer = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {self._plan.path} HTTP/1.1\r\nHost: {self._plan.host}:{self._plan.port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                f"Sec-WebSocket-Protocol: {self._plan.subprotocol}\r\n\r\n"
            ).encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self._buffer[:12])
            del self._buffer[: end + 4]
            if not status.endswith(b"101"):
                self._fail(f"handshake answered {status!r}")
                return
            self._upgraded = True
            self._send(TEXT, self._plan.init)
        self._frames()

    def _frames(self) -> None:
        buffer = self._buffer
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            size, offset = second & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, offset = struct.unpack_from("!H", buffer, 2)[0], 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, offset = struct.unpack_from("!Q", buffer, 2)[0], 10
            if len(buffer) < offset + size:
                return
            payload = bytes(buffer[offset : offset + size])  # servers do not mask
            del buffer[: offset + size]
            opcode = first & 0x0F
            if opcode == PING:
                self._send(PONG, payload)
            elif opcode == CLOSE:
                self._fail("the server closed the connection")
                return
            elif opcode in (TEXT, 0x0):
                self._fragments += payload
                if first & 0x80:
                    message, self._fragments = bytes(self._fragments), bytearray()
                    self._message(message)

    def _message(self, message: bytes) -> None:
        if b'"next"' in message:
            latency = latency_of(message, time.time())
            self.received += 1
            if latency is not None:
                self._tally.latencies.append(latency)
                if not self._tally.sample:
                    self._tally.sample = message
        elif b'"connection_ack"' in message and not self.subscribed.done():
            self._send(TEXT, self._plan.subscribe)
            self.subscribed.set_result(None)
        elif b'"error"' in message or b'"complete"' in message:
            self._fail(f"the subscription ended: {message[:300]!r}")

    def _send(self, opcode: int, payload: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(frame(opcode, payload))

    def _fail(self, why: str) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(ConnectionError(why))
        if self._transport is not None:
            self._transport.close()

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._send(CLOSE, struct.pack("!H", 1000))
            self._transport.close()


async def _open(plan: ClientPlan, tally: Tally) -> tuple[list[Subscriber], list[str]]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(plan.connecting)
    subscribers: list[Subscriber] = []
    failures: list[str] = []

    async def one() -> None:
        async with gate:
            try:
                _, subscriber = await loop.create_connection(
                    lambda: Subscriber(plan, tally), plan.host, plan.port
                )
                await asyncio.wait_for(subscriber.subscribed, timeout=30)
                subscribers.append(subscriber)
            except (OSError, ConnectionError, TimeoutError) as error:
                failures.append(repr(error))

    await asyncio.gather(*(one() for _ in range(plan.count)))
    return subscribers, failures


async def _serve(pipe: Connection, plan: ClientPlan) -> None:
    """Open the subscribers, then answer the driver's commands until it says close."""
    loop = asyncio.get_running_loop()
    tally = Tally()
    started = time.monotonic()
    subscribers, failures = await _open(plan, tally)
    pipe.send({"connected": len(subscribers), "failed": len(failures), "first_failure": failures[:1],
               "seconds": time.monotonic() - started})
    try:
        while True:
            command: str = await loop.run_in_executor(None, pipe.recv)
            answer: dict[str, Any]
            if command == "count":
                answer = {"reached": sum(1 for s in subscribers if s.received),
                          "deliveries": sum(s.received for s in subscribers)}
            elif command == "reset":
                for subscriber in subscribers:
                    subscriber.received = 0
                tally.latencies.clear()
                answer = {}
            elif command == "report":
                answer = {"latencies": list(tally.latencies), "sample": tally.sample,
                          "deliveries": sum(s.received for s in subscribers),
                          "open": sum(1 for s in subscribers if s.open)}
            else:
                return
            pipe.send(answer)
    finally:
        for subscriber in subscribers:
            subscriber.close()
        await asyncio.sleep(0.2)  # let the close frames go out


def run(pipe: Connection, plan: ClientPlan) -> None:
    """The entry of one client process."""
    raise_fd_limit()
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop

            uvloop.run(_serve(pipe, plan))
        except ImportError:
            asyncio.run(_serve(pipe, plan))
