"""The fan-out baseline: a bare `websockets` server broadcasting one payload to every subscriber.

    python bench/fanout_baseline.py --port PORT --template FILE

It speaks just enough graphql-transport-ws for the benchmark's clients (`connection_init` is
acknowledged, `subscribe` registers the connection) and nothing of GraphQL. A `publish` from
the driver's control connection stamps the template, a message the gateway delivered, with
the current time as its `at`, and sends it to every subscriber with `websockets.broadcast()`:
what pushing those bytes to that many sockets costs in Python, and nothing more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.typing import Subprotocol

HOST = "127.0.0.1"
SUBPROTOCOL = "graphql-transport-ws"


class Broadcaster:
    def __init__(self, template: str) -> None:
        # The template's `at` value is replaced by the time of each publish.
        start = template.index('"at"')
        first = template.index('"', start + 4) + 1
        last = template.index('"', first)
        self._before, self._after = template[:first], template[last:]
        self.subscribers: set[ServerConnection] = set()

    def publish(self) -> int:
        message = self._before + datetime.now(UTC).isoformat() + self._after
        broadcast(self.subscribers, message)
        return len(self.subscribers)

    async def handle(self, connection: ServerConnection) -> None:
        try:
            async for raw in connection:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "connection_init":
                    await connection.send('{"type":"connection_ack"}')
                elif kind == "subscribe":
                    self.subscribers.add(connection)
                elif kind == "publish":
                    await connection.send(json.dumps({"type": "published", "subscribers": self.publish()}))
                elif kind == "ping":
                    await connection.send('{"type":"pong"}')
        finally:
            self.subscribers.discard(connection)


async def main(port: int, template: str) -> None:
    broadcaster = Broadcaster(template)
    async with serve(broadcaster.handle, HOST, port, subprotocols=[Subprotocol(SUBPROTOCOL)], max_size=64 * 1024) as server:
        print(f"baseline on ws://{HOST}:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--template", type=Path, required=True, help="a delivered message to broadcast")
    args = parser.parse_args()
    text = args.template.read_text(encoding="utf-8")
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop  # the gateway's uvicorn runs on uvloop: so does its baseline

            uvloop.run(main(args.port, text))
        except ImportError:
            asyncio.run(main(args.port, text))
