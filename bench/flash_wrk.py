"""The flash sale's gateway path driven by wrk, the compiled load generator.

The Python client (`flash_load.through_gateway`) spends 0.2-0.3 ms of CPU per request, a
fifth of a core or more during the sale, on a machine where the gateway and PostgreSQL need
every cycle. wrk (`apt-get install wrk`) sends the same requests for a small fraction of
that: bench/flash_rush.lua numbers the orders, times every request on CLOCK_MONOTONIC and
writes (n, sent, answered, verdict) for each. This process meanwhile reads the gateway's and
PostgreSQL's counters every 50 ms, as `rush()` does, and builds the same `Tally` from the
records: the time origin is the first request sent, and the load generator's CPU is wrk's
own (its resource usage once it has exited).
"""

from __future__ import annotations

import asyncio
import dataclasses
import resource
import tempfile
import time
from pathlib import Path

import orjson
from flash_load import (
    OUT_OF_STOCK,
    PLACE_ORDER,
    PLACED,
    GatewayPlan,
    Mark,
    Sale,
    Tally,
    _delta,
    _mark,
    _marks,
    _sample,
    drive,
    gateway_sale,
)
from servers import BENCH
from wrk import MISSING, available

__all__ = ["MISSING", "THREADS", "available", "run_gateway", "tally_of", "through_wrk"]

SCRIPT = BENCH / "flash_rush.lua"
THREADS = 1  # one thread keeps 32 connections busy for a few percent of a core
# wrk runs for -d seconds unless the script ends it: past the time cap on sending, the last
# answers may take the plan's timeout. Orders still unanswered then count as errors.
GRACE_SECONDS = 5.0


def run_gateway(plan: GatewayPlan) -> tuple[Tally, Tally]:
    """The warm-up's tally and the sale's, sent by wrk; the entry of the client process."""
    return drive(gateway_sale(plan, through_wrk))


async def through_wrk(plan: GatewayPlan, sale: Sale) -> Tally:
    with tempfile.TemporaryDirectory(prefix="quanyi-rush-") as scratch:
        records = Path(scratch) / "answers.tsv"
        marks: list[Mark] = []
        readings = Tally()  # only its marks: raw perf_counter times, moved once the start is known
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        before = _marks(plan.gateway_pid)
        marks.append(_mark(time.perf_counter(), before))
        deadline = time.perf_counter() + plan.cap_seconds
        sampling = asyncio.create_task(_sample(readings, plan.gateway_pid, 0.0))
        try:
            output = await _wrk(plan, sale, records, deadline)
        finally:
            sampling.cancel()
        after = _marks(plan.gateway_pid)
        marks += readings.marks
        marks.append(_mark(time.perf_counter(), after))
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        tally = tally_of(records.read_text(), marks, sale.orders)
    tally.client_cpu = used.ru_utime + used.ru_stime - children.ru_utime - children.ru_stime
    tally.app_cpu = _delta(before["app"], after["app"])
    tally.database_cpu = _delta(before["database"], after["database"])
    writes = _delta(before["writes"], after["writes"])
    tally.app_writes = int(writes) if writes is not None else None
    if tally.errors and "Socket errors" in output:
        tally.first_error = f"{tally.first_error}; wrk: {_socket_errors(output)}"
    return tally


async def _wrk(plan: GatewayPlan, sale: Sale, records: Path, deadline: float) -> str:
    arguments = {
        "records": str(records),
        "orders": str(sale.orders),
        "threads": str(THREADS),
        "connections": str(plan.concurrency),
        "deadline": repr(deadline),
        "prefix": sale.key_prefix,
        "channel": orjson.dumps(plan.channel).decode(),
        "sku": orjson.dumps(sale.sku_gid).decode(),
        "query": orjson.dumps(PLACE_ORDER).decode(),
        "top_up": "1" if sale.top_up else "0",
    }
    seconds = plan.cap_seconds + plan.timeout + GRACE_SECONDS
    command = [
        "wrk", f"-t{THREADS}", f"-c{plan.concurrency}", f"-d{int(seconds) + 1}s",
        f"--timeout={int(plan.timeout)}s", "-s", str(SCRIPT),
        f"http://{plan.host}:{plan.port}/graphql", "--",
        *(f"{name}={value}" for name, value in arguments.items()),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    output = out.decode(errors="replace")
    if process.returncode != 0 or not records.exists():
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    return output


def tally_of(records: str, marks: list[Mark], orders: int) -> Tally:
    """The tally `rush()` would have kept, from the script's records: every time is counted
    from the first request sent, the counters' readings too."""
    rows = []
    for line in records.splitlines():
        n, sent, answered, verdict = line.split("\t", 3)
        if int(n) >= 0:  # a negative n: a guessed outcome the script found nobody to own
            rows.append((int(n), float(sent), float(answered), verdict))
    tally = Tally()
    if not rows:
        return tally
    start = min(sent for _, sent, _, _ in rows)
    tally.marks = [dataclasses.replace(mark, at=mark.at - start) for mark in marks]
    tally.sent = len(rows)
    tally.capped = len({n for n, _, _, _ in rows}) < orders
    lost = [row for row in rows if row[2] < 0]
    for _, _, _, verdict in lost:
        tally.errors += 1
        tally.first_error = tally.first_error or verdict
    for _, sent, answered, verdict in sorted((row for row in rows if row[2] >= 0), key=lambda row: row[2]):
        at = answered - start
        tally.latencies.append(answered - sent)
        tally.answered_at.append(at)
        tally.answers.append((at, verdict))
        tally.elapsed = max(tally.elapsed, at)
        if verdict == PLACED:
            tally.placed += 1
            tally.placed_at.append(at)
            tally.selling = max(tally.selling, at)
        elif verdict == OUT_OF_STOCK:
            tally.refused += 1
        else:
            tally.errors += 1
            tally.first_error = tally.first_error or verdict
    return tally


def _socket_errors(output: str) -> str:
    return next((line.strip() for line in output.splitlines() if "Socket errors" in line), "")
