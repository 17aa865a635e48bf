"""What one call to a supplier costs the gateway's CPU, by the way it travels.

    python bench/supplier_client.py [--calls 3200] [--in-flight 16]

Starts the simulated supplier (`quanyi supplier-sim`, sync mode, no added latency) and sends
--calls top-ups through `HttpSupplier.submit`, --in-flight at once, three ways in turn, in
the same run: over its own pool (aiohttp, what the gateway uses), over an httpx client with
as many kept connections, and that httpx client again (a second pass, its connections all
open). Prints this process's CPU per call and calls per second for each:
the simulator answers in its own process, so the CPU is the client's alone. Aim: the pool
the gateway uses costs at most a fifth of httpx's per call.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fulfilment import SECRET, supplier_sim
from servers import ROOT
from tables import text_table

sys.path.insert(1, str(ROOT))

from domain.money import Money
from suppliers.base import Outcome, TopUp
from suppliers.http import HttpSupplier


async def timed(adapter: HttpSupplier, calls: int, in_flight: int, tag: str) -> tuple[float, float]:
    """(CPU ms a call, calls a second) for `calls` submissions, `in_flight` at once, after a
    warm-up round that opens the connections."""
    semaphore = asyncio.Semaphore(in_flight)

    async def one(index: int) -> None:
        async with semaphore:
            got = await adapter.submit(TopUp(f"{tag}-{index}", "GS-60", f"acct-{index}", 1, Money.of("6.00")))
            assert got.outcome is Outcome.SUCCEEDED, got

    await asyncio.gather(*(one(-i - 1) for i in range(in_flight)))
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    return 1000 * (time.process_time() - cpu) / calls, calls / (time.perf_counter() - wall)


async def measure(url: str, calls: int, in_flight: int) -> list[tuple[str, float, float]]:
    rows = []
    pooled = HttpSupplier("bench", url, SECRET, timeout_seconds=10)
    try:
        rows.append(("own pool (aiohttp)", *await timed(pooled, calls, in_flight, "pool")))
    finally:
        await pooled.close()
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        over_httpx = HttpSupplier("bench", url, SECRET, timeout_seconds=10, client=client)
        rows.append(("httpx client", *await timed(over_httpx, calls, in_flight, "httpx")))
        rows.append(("httpx client, second pass", *await timed(over_httpx, calls, in_flight, "httpx2")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3200)
    parser.add_argument("--in-flight", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, supplier_sim(0, Path(folder) / "sim.log") as url:
        rows = asyncio.run(measure(url, args.calls, args.in_flight))
    base = rows[1][1]
    print(text_table(("path", "CPU ms a call", "calls a second", "× httpx's CPU"),
                     [(name, f"{cpu:.3f}", f"{rate:.0f}", f"{cpu / base:.2f}") for name, cpu, rate in rows]))
    print(f"{args.calls} calls, {args.in_flight} in flight; aim: own pool ≤ 0.20× httpx's CPU a call")


if __name__ == "__main__":
    main()
