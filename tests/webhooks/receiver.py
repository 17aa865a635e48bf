"""A webhook receiver on 127.0.0.1 for tests: records every request, answers as scripted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Gate:
    """Holds requests to one path until opened, counting how many wait at once."""

    path: str
    opened: threading.Event = field(default_factory=threading.Event)
    waiting: int = 0
    most: int = 0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # status codes to answer with, in turn; then 200
    gate: Gate | None = None  # requests to its path wait until it opens

    def at(self, path: str) -> list[Received]:
        return [request for request in self.requests if request.path == path]


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver("")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server spelling
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            gate = receiver.gate
            if gate is not None and self.path == gate.path:
                with lock:
                    gate.waiting += 1
                    gate.most = max(gate.most, gate.waiting)
                gate.opened.wait(timeout=20)
                with lock:
                    gate.waiting -= 1
            with lock:
                receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.answers.pop(0) if receiver.answers else 200
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"receiver broke: " + b"x" * 2000)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # a burst of deliveries is not dropped by the listen backlog (5 by default)

    server = Server(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()

