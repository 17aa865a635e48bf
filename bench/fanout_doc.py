"""The fan-out figures, their table, and the "Fan-out" section of docs/benchmarks.md."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import tables
from catalog_doc import machine, write_section

HEADING = "Fan-out"
GATEWAY = "gateway, stockChanged over graphql-transport-ws"
BASELINE = "bare `websockets` broadcast"
AIM_P99_MS = 250.0
AIM_KB_PER_CONNECTION = 60


@dataclass(frozen=True)
class Figures:
    server: str
    subscribers: int  # connected and subscribed
    failed: int
    first_failure: str | None
    expected: int  # subscribers × measured changes
    delivered: int
    latencies: list[float]  # seconds, sorted, one per delivery
    rss_idle: int  # bytes, before any subscriber connects
    rss_subscribed: int  # bytes, with every subscriber connected and subscribed
    rss_after: int  # bytes, after the measured changes
    cpu_per_event: float | None  # server CPU seconds per measured change
    message: bytes  # one delivered message
    connect_seconds: float

    def quantile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return self.latencies[min(len(self.latencies) - 1, int(q * len(self.latencies)))] * 1000

    @property
    def per_connection(self) -> float:
        return (self.rss_subscribed - self.rss_idle) / self.subscribers if self.subscribers else float("nan")


@dataclass(frozen=True)
class FanoutRun:
    figures: list[Figures]
    command: str
    events: int
    interval: float
    client_processes: int
    database: str
    redis: bool
    load_before: float
    load_after: float

    def of(self, server: str) -> Figures:
        return next(f for f in self.figures if f.server == server)


def command(args: argparse.Namespace) -> str:
    given = [
        ("--subscribers", str(args.subscribers), "2000"),
        ("--events", str(args.events), "20"),
        ("--interval", f"{args.interval:g}", "0.5"),
        ("--client-processes", str(args.client_processes), "4"),
        ("--database", args.database, "sqlite"),
        ("--redis", args.redis or "", ""),
    ]
    return "python bench/fanout.py" + "".join(f" {flag} {value}" for flag, value, default in given if value != default)


HEADER = (
    "server",
    "subscribers",
    "delivered",
    "p50 ms",
    "p99 ms",
    "max ms",
    "server CPU per change",
    "RSS idle → subscribed → after",
    "per connection",
    "message",
)


def rows(run: FanoutRun) -> list[tuple[str, ...]]:
    return [
        (
            f.server,
            f"{f.subscribers:,}",
            f"{f.delivered:,} / {f.expected:,}",
            tables.ms(f.quantile_ms(0.50)),
            tables.ms(f.quantile_ms(0.99)),
            tables.ms(f.quantile_ms(1.0)),
            f"{f.cpu_per_event * 1000:.0f} ms" if f.cpu_per_event is not None else "–",
            f"{f.rss_idle / 2**20:.0f} → {f.rss_subscribed / 2**20:.0f} → {f.rss_after / 2**20:.0f} MiB",
            f"{f.per_connection / 1000:.1f} KB",
            f"{len(f.message)} B",
        )
        for f in run.figures
    ]


def text_table(run: FanoutRun) -> str:
    return tables.text_table(HEADER, rows(run))


def markdown_table(run: FanoutRun) -> str:
    return tables.markdown_table(HEADER, rows(run))


def verdict(run: FanoutRun) -> str:
    """Where the gateway lands against the aim, from the figures."""
    gateway, baseline = run.of(GATEWAY), run.of(BASELINE)
    p99, per_connection = gateway.quantile_ms(0.99), gateway.per_connection
    latency = "meets" if p99 < AIM_P99_MS else "misses"
    memory = "meets" if per_connection < AIM_KB_PER_CONNECTION * 1000 else "misses"
    parts = [
        (
            f"At {gateway.subscribers:,} subscribers the gateway's p99 of {p99:.0f} ms {latency} the "
            f"latency aim and its {per_connection / 1000:.1f} KB per connection {memory} the memory "
            f"aim; the bare broadcast does {baseline.quantile_ms(0.99):.0f} ms and "
            f"{baseline.per_connection / 1000:.1f} KB."
        )
    ]
    if gateway.delivered < gateway.expected:
        parts.append(f"{gateway.expected - gateway.delivered:,} expected deliveries did not arrive.")
    return " ".join(parts)


def section(run: FanoutRun, analysis: str) -> str:
    gateway = run.of(GATEWAY)
    backend = "SQLite (aiosqlite, WAL)" if run.database == "sqlite" else "PostgreSQL (asyncpg)"
    broker = "the Redis broker" if run.redis else "the in-process broker"
    return f"""## {HEADING}

One stock change pushed to {gateway.subscribers:,} WebSocket subscribers of one gateway process:
`stockChanged(channel: "web", skuIds: [one SKU]) {{ skuId channel available reserved at }}` over
graphql-transport-ws. Gateway on {backend}, {broker}, one uvicorn worker.

```
{run.command}
```

- Machine: {machine(run.load_before)} (load average {run.load_after:.2f} after it).
- The subscribers are bare asyncio protocols (`bench/fanout_clients.py`: the WebSocket handshake,
  `connection_init`, `subscribe`, pongs) spread over {run.client_processes} client processes on the
  same machine, so clients and server share its cores. They connect, at most 32 handshakes in
  flight per process, then a warm-up of changes runs until every subscriber has received one.
  Other work on the machine moves the figures a great deal (a test suite running beside one run
  tripled the gateway's p99); the load averages say how quiet it was.
- {run.events} measured changes, {run.interval:g} s apart: `setChannelQuota` on the web channel
  with an operator key, alternating between two quotas under the SKU's pool. The server stamps
  each change with `at` when the command records it; a delivery's latency is the subscriber's
  clock at arrival minus that `at` (one machine, one clock). For the gateway it spans the commit,
  the broker, the stock feed's one read of the figures, GraphQL execution, and the writes to every
  socket.
- The baseline (`bench/fanout_baseline.py`) is a `websockets` server on uvloop that acknowledges
  `connection_init`, registers each `subscribe`, and on a publish from the driver stamps a message
  the gateway delivered with its own `at` and sends it to all with `websockets.broadcast()`: the
  same bytes to the same number of sockets, with no GraphQL, database or broker behind it.
- "per connection" is (RSS with every subscriber connected − RSS idle) / subscribers, in KB of
  1,000 bytes, from `VmRSS` in `/proc/<pid>/status`; "server CPU per change" is the server
  process's CPU time over the measured changes divided by their number (for the gateway it
  includes the `setChannelQuota` request itself).

{markdown_table(run)}

Aim: p99 under {AIM_P99_MS:.0f} ms at 2,000 subscribers and under {AIM_KB_PER_CONNECTION} KB ({AIM_KB_PER_CONNECTION * 1000:,} bytes) of
server memory per connection.

{verdict(run)}

{analysis}
"""


# From a py-spy profile (`--native --rate 200`, 20 s) of the gateway under this benchmark
# at 2,000 subscribers, taken on 2026-11-25; rerun it after changing the send path.
ANALYSIS = """\
What stands between the gateway and the bare broadcast is the work it does per subscriber
after the shared part: the stock feed reads a change's figures once for every subscriber of
the channel (`services/live/stock_feed.py`) and the selection runs once per document, variables and
caller (`SharedEvent` in `transport/operations.py`), but each subscriber still has its task
woken, its message go through strawberry's graphql-transport-ws handler, Starlette's and
uvicorn's ASGI send and the websockets framing, and a `write()` of its own. In a profile of the
gateway during this benchmark about 39% of its busy time is the kernel's loopback `write()`
calls, 13% the garbage collector (the burst of wake-ups a change makes allocates thousands of
short-lived objects at once), about 12% the send path in Python and most of the rest waking and
running each subscriber's stream. Reading the figures in every subscriber's stream instead, one
session each, costs 5.3 s of CPU per change already at 500 subscribers (p99 22 s); at 2,000 the
gateway could no longer answer the mutation that makes the change within 30 s. A connection costs
the ASGI connection and uvicorn's protocol, strawberry's handler and operation task, the GraphQL
context (its DataLoaders are made only when a resolver uses one), the subscription's generators
and its bounded inbox (64 updates)."""


def update(path: Path, run: FanoutRun, analysis: str = ANALYSIS) -> None:
    write_section(path, HEADING, section(run, analysis).rstrip() + "\n")
