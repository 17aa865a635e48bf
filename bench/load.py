"""A lean HTTP/1.1 load generator: keep-alive connections that each send one request at a time.

httpx spends more CPU per request than the HTTP floor server does, so it would measure
itself there. This client writes a prepared request and reads the answer by its
Content-Length on a bare asyncio protocol (uvloop when installed). It runs in its own
process, so client and server each get one of the machine's cores, and it reports the
CPU it used: near 100% means the figure is the client's limit, not the server's.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Plan:
    host: str
    port: int
    request: bytes  # the complete HTTP request, sent as is on every turn
    # The `data` every answer must carry, encoded compactly (see same_answer); None: any
    # answer with data and no errors (a page whose stock moves while it is measured).
    expected: bytes | None
    concurrency: int
    warmup: float
    duration: float
    server_pid: int | None = None


@dataclass(slots=True)
class Outcome:
    completed: int = 0
    failed: int = 0
    window: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_cpu: float | None = None  # CPU seconds the server spent in the window
    client_cpu: float = 0.0  # CPU seconds this process spent in the window
    first_failure: str | None = None


def http_post(host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        "Accept: application/json\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection(asyncio.Protocol):
    """One keep-alive connection; `exchange` sends a request and waits for its answer."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._head_end = -1
        self._total = 0
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    @property
    def closed(self) -> bool:
        """Whether the connection is gone (a server closes a keep-alive connection idle past its timeout)."""
        return self._transport is None or self._transport.is_closing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._head_end < 0:
            self._head_end = self._buffer.find(b"\r\n\r\n")
            if self._head_end < 0:
                return
            self._total = (
                self._head_end + 4 + _content_length(bytes(self._buffer[: self._head_end]))
            )
        if len(self._buffer) < self._total:
            return
        status = int(self._buffer[9:12])
        body = bytes(self._buffer[self._head_end + 4 : self._total])
        del self._buffer[: self._total]
        self._head_end = -1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((status, body))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


def same_answer(body: bytes, data: bytes | None) -> bool:
    """Whether an answer is `{"data":<data>}`, allowing the gateway's `extensions` after the
    data (its cost, which plain strawberry does not report) but no `errors` and no other data.
    Both servers encode with orjson, so equal data are equal bytes. With `data` None, any
    answer with data and no errors."""
    if data is None:
        return body.startswith(b'{"data":{') and b'"errors":' not in body
    head = b'{"data":' + data
    if not body.startswith(head):
        return False
    rest = body[len(head):]
    return rest == b"}" or rest.startswith(b',"extensions":')


def _content_length(head: bytes) -> int:
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line[15:].strip())
    # Every server measured here answers with a length; chunked answers are not read.
    raise ValueError("the answer has no Content-Length")


def server_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of a process, from /proc (Linux only)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(plan: Plan) -> Outcome:
    loop = asyncio.get_running_loop()
    outcome = Outcome()
    connections = [
        (await loop.create_connection(Connection, plan.host, plan.port))[1]
        for _ in range(plan.concurrency)
    ]
    start = time.perf_counter() + plan.warmup
    end = start + plan.duration
    marks: dict[str, float | None] = {}

    def mark(name: str) -> None:
        marks[f"{name}_server"] = server_cpu(plan.server_pid)
        marks[f"{name}_client"] = time.process_time()

    loop.call_later(plan.warmup, mark, "start")
    loop.call_later(plan.warmup + plan.duration, mark, "end")

    async def turn(connection: Connection) -> None:
        while True:
            sent = time.perf_counter()
            if sent >= end:
                return
            try:
                status, body = await connection.exchange(plan.request)
            except (ConnectionError, ValueError) as error:
                outcome.failed += 1
                outcome.first_failure = outcome.first_failure or repr(error)
                return
            done = time.perf_counter()
            if status != 200 or not same_answer(body, plan.expected):
                outcome.failed += 1
                outcome.first_failure = outcome.first_failure or f"{status}: {body[:300]!r}"
            elif start <= done <= end:
                outcome.completed += 1
                outcome.latencies.append(done - sent)

    try:
        await asyncio.gather(*(turn(connection) for connection in connections))
    finally:
        for connection in connections:
            connection.close()
    outcome.window = plan.duration
    outcome.client_cpu = (marks.get("end_client") or 0.0) - (marks.get("start_client") or 0.0)
    server_start, server_end = marks.get("start_server"), marks.get("end_server")
    if server_start is not None and server_end is not None:
        outcome.server_cpu = server_end - server_start
    return outcome


def run(plan: Plan) -> Outcome:
    """Drive one server for warm-up plus duration seconds; the entry of the client process."""
    try:
        import uvloop

        return uvloop.run(_drive(plan))
    except ImportError:
        return asyncio.run(_drive(plan))
