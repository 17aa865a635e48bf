"""The gateway's HTTP connections (transport/http_protocol.py): an answer in one send, and
everything a client sees as uvicorn's own protocol serves it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from transport.http_protocol import HeldWrites, OneSendHttp


class Socket:
    """What HeldWrites sends on: each send recorded as the bytes it carried."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.sends.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        self.sends.append(b"".join(lines))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0


async def _turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


async def test_headers_and_body_written_in_one_turn_leave_in_one_send() -> None:
    sent = Socket()
    held = HeldWrites(sent, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert sent.sends == []
    held.write(b"ok")
    assert sent.sends == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    await _turn()
    assert len(sent.sends) == 1  # the end of the turn has nothing left to send


async def test_a_lone_write_leaves_when_the_turn_ends_and_order_is_kept() -> None:
    sent = Socket()
    held = HeldWrites(sent, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"a")
    held.write(b"b")
    held.write(b"c")  # held again, after "ab" went
    held.write(b"")  # nothing to send: neither sent nor holding anything back
    assert sent.sends == [b"ab"]
    await _turn()
    assert sent.sends == [b"ab", b"c"]
    held.write(b"d")
    await _turn()
    assert sent.sends == [b"ab", b"c", b"d"]


async def test_closing_sends_what_is_held_first_and_aborting_drops_it() -> None:
    sent = Socket()
    held = HeldWrites(sent, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    held.close()
    assert sent.sends == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and sent.closed
    await _turn()
    assert len(sent.sends) == 1

    other = Socket()
    cut = HeldWrites(other, asyncio.get_running_loop())  # type: ignore[arg-type]
    cut.write(b"partial")
    assert cut.get_write_buffer_size() == len(b"partial")
    cut.abort()
    await _turn()
    assert other.sends == [] and other.aborted


async def test_nothing_is_sent_on_a_connection_already_closing() -> None:
    sent = Socket()
    held = HeldWrites(sent, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"late")
    sent.closed = True  # the peer went away
    await _turn()
    assert sent.sends == []


async def _answer(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(f"{request.method} {request.url.path} {len(body)}")


async def _stream(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for index in range(200):
            yield f"{index:04d}".encode() * 256  # 1 KiB each
            if index % 50 == 0:
                await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


async def _echo(websocket: WebSocket) -> None:
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text.upper())


APP = Starlette(routes=[
    Route("/answer", _answer, methods=["GET", "HEAD", "POST"]),
    Route("/stream", _stream),
    WebSocketRoute("/echo", _echo),
])


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, http=OneSendHttp, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        await serving
        listener.close()


async def _exchange(port: int, request: bytes, *, until: bytes, half_close: bool = False) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        if half_close:
            writer.write_eof()
        answer = b""
        while until not in answer:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                break
            answer += chunk
        return answer
    finally:
        writer.close()


async def test_answers_pipelined_head_and_continue_reach_the_client_whole() -> None:
    async with served(APP) as port:
        pipelined = await _exchange(
            port,
            b"GET /answer HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /answer HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"HEAD /answer HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            until=b"Not Found",
        )
        answers = pipelined.split(b"HTTP/1.1 ")[1:]
        assert [a.split(b"\r\n", 1)[0] for a in answers] == [b"200 OK", b"200 OK", b"200 OK", b"404 Not Found"]
        assert answers[0].endswith(b"\r\n\r\nGET /answer 0")
        assert answers[1].endswith(b"\r\n\r\nPOST /answer 5")
        assert answers[2].endswith(b"\r\n\r\n")  # HEAD: the headers alone, not held back

        # Expect: 100-continue is answered before the client sends its body.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"POST /answer HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            writer.write(b"abc")
            final = await asyncio.wait_for(reader.readuntil(b"POST /answer 3"), 5)
            assert final.startswith(b"HTTP/1.1 200 OK")
        finally:
            writer.close()

        bad = await _exchange(port, b"NOT HTTP AT ALL\r\n\r\n", until=b"Invalid HTTP request")
        assert bad.startswith(b"HTTP/1.1 400 Bad Request")


async def test_a_streamed_answer_arrives_whole_and_in_order() -> None:
    async with served(APP) as port:
        answer = await _exchange(
            port, b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", until=b"0\r\n\r\n",
        )
        head, _, chunked = answer.partition(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head
        body, rest = b"", chunked
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                break
            body, rest = body + rest[:size], rest[size + 2:]
        assert body == b"".join(f"{index:04d}".encode() * 256 for index in range(200))


async def test_a_websocket_upgrade_still_works() -> None:
    async with served(APP) as port:
        async with connect(f"ws://127.0.0.1:{port}/echo") as ws:
            for word in ("one", "two", "three"):
                await ws.send(word)
                assert await asyncio.wait_for(ws.recv(), 5) == word.upper()


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_many_sequential_answers_on_one_connection(method: str) -> None:
    async with served(APP) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for index in range(50):
                body = b"x" * index
                writer.write(f"{method} /answer HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                assert await asyncio.wait_for(reader.readexactly(length), 5) == f"{method} /answer {index}".encode()
        finally:
            writer.close()
