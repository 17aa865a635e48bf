"""The gateway's own CPU per placeOrder, placed and refused, measured in process.

    python bench/place_cpu.py [--codes 2000] [--refused 2000] [--warmup 300]

Prepares a fresh PostgreSQL database as the flash sale does (bench/flash_sale.py), builds the
app in this process and sends it placeOrder mutations one at a time straight through ASGI
(the scope uvicorn would give it), so that the CPU this process spends (time.process_time)
is the application's: its HTTP layers, GraphQL, the order's Python, asyncpg and the followers
the orders wake, not PostgreSQL and not a load generator. First --warmup orders of another
SKU, then --codes orders that are placed (one code each), then --refused more, answered
OUT_OF_STOCK by the sold-out gate. Prints CPU milliseconds per placed and per refused order.
The log lines go to a file, as a served gateway's go to its log.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from servers import ROOT

sys.path.insert(1, str(ROOT))

from database import bench_database
from flash_data import CHANNEL, stock_flash_sale
from flash_load import OUT_OF_STOCK, PLACE_ORDER, PLACED, verdict_of

from config import Settings
from schema.relay import encode_id


def body_of(sku_gid: str, prefix: str, n: int) -> bytes:
    variables = {
        "input": {
            "channel": CHANNEL,
            "idempotencyKey": f"{prefix}-order-{n:08d}",
            "lines": [{"skuId": sku_gid, "quantity": 1}],
            "buyer": {"phone": f"139{n:08d}", "deviceId": f"bench-{n}"},
        }
    }
    return orjson.dumps({"query": PLACE_ORDER, "operationName": "Place", "variables": variables})


async def post(app: object, body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"accept", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, object]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]  # type: ignore[assignment]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))  # type: ignore[arg-type]

    await app(scope, receive, send)  # type: ignore[operator]
    return status, b"".join(chunks)


@dataclass(frozen=True)
class Spent:
    """CPU milliseconds per order over a phase, and the part of it in user space."""

    cpu: float
    user: float

    def __str__(self) -> str:
        return f"{self.cpu:.3f} ms (user {self.user:.3f} ms)"


async def phase(
    app: object, sku_gid: str, prefix: str, orders: range, expect: str, profile: Path | None = None,
) -> Spent:
    """What the orders numbered `orders` cost, each of which must be answered `expect`;
    with `profile`, their cProfile statistics (CPU time) are written there."""
    await asyncio.sleep(0.2)  # followers of what came before settle outside the count
    gc.collect()
    profiler = cProfile.Profile(time.process_time) if profile is not None else None
    if profiler is not None:
        profiler.enable()
    cpu, used = time.process_time(), resource.getrusage(resource.RUSAGE_SELF)
    for n in orders:
        status, answer = await post(app, body_of(sku_gid, prefix, n))
        verdict = verdict_of(status, answer)
        if verdict != expect:
            raise SystemExit(f"order {n}: expected {expect}, got {verdict}")
    await asyncio.sleep(0)
    cpu, user = time.process_time() - cpu, resource.getrusage(resource.RUSAGE_SELF).ru_utime - used.ru_utime
    if profiler is not None and profile is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    return Spent(cpu / len(orders) * 1000, user / len(orders) * 1000)


async def measure(
    env: dict[str, str], codes: int, refused: int, warmup: int, gids: tuple[str, str], profile: Path | None,
) -> None:
    from asgi_lifespan import LifespanManager

    os.environ.update(env)
    from gateway import create_app

    app = create_app()
    warm_gid, sale_gid = gids
    prefix = f"cpu{os.getpid()}"
    async with LifespanManager(app):
        await phase(app, warm_gid, f"{prefix}w", range(warmup), PLACED)
        placed = await phase(app, sale_gid, prefix, range(codes), PLACED, profile and profile / "placed.prof")
        await phase(app, sale_gid, prefix, range(codes, codes + 50), OUT_OF_STOCK)  # the gate learns
        gone = await phase(
            app, sale_gid, prefix, range(codes + 50, codes + 50 + refused), OUT_OF_STOCK,
            profile and profile / "refused.prof",
        )
    print(f"CPU per placed order:  {placed}  ({codes} orders)")
    print(f"CPU per refused order: {gone}  ({refused} orders)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", type=int, default=2_000, help="orders placed (the hot SKU's codes)")
    parser.add_argument("--refused", type=int, default=2_000, help="orders refused once it sold out")
    parser.add_argument("--warmup", type=int, default=300, help="orders of another SKU first")
    parser.add_argument("--profile", type=Path, help="a folder to write cProfile statistics of both phases to")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="quanyi-place-cpu-") as scratch:
        folder = Path(scratch)
        with bench_database("postgres", folder, catalog=False) as env:
            shelf = asyncio.run(stock_flash_sale(Settings.from_env(env), args.codes, args.warmup))
            gids = (str(encode_id("Sku", shelf.warmup_sku)), str(encode_id("Sku", shelf.gateway_sku)))
            log = open(folder / "gateway.log", "w")  # noqa: SIM115 - the process's stderr until it ends
            stderr, sys.stderr = sys.stderr, log
            try:
                asyncio.run(measure(env, args.codes, args.refused, args.warmup, gids, args.profile))
            finally:
                sys.stderr = stderr
                log.close()
                lines = (folder / "gateway.log").read_text(errors="replace").splitlines()
                print(f"log: {len(lines)} lines; last: {lines[-1] if lines else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
