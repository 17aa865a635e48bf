"""The catalog sections of docs/benchmarks.md: how it was measured, the table, the verdict."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from report import FLOOR, GATEWAY_OFF, GATEWAY_ON, STRAWBERRY, Figures, markdown_table

INTRODUCTION = (
    "# Benchmarks\n\nEach benchmark in `bench/` prints its figures beside baselines measured in the "
    "same run on the same machine. Figures are from one run; rerun to compare.\n\n"
)

METHOD = """\
- Each server is one uvicorn worker (uvloop, httptools, no access log) on 127.0.0.1, started alone
  for its turn, after the gateway's database is migrated, loaded with the demo data and filled with
  the benchmark's own products (`bench/catalog_data.py`) in a database created for the run.
- The load generator is {client} with
  {concurrency} keep-alive connections, {warmup:g} s of warm-up then {duration:g} s measured per
  server. Every answer must be 200 and carry the same `data` as the gateway's first answer, with no
  `errors` (the gateway's `extensions.cost` beside it is allowed: plain strawberry reports none).
- **Client and server share the machine**: with 2 cores each gets about one. "client CPU" is the
  share of a core the load generator used (near 100%: the figure is the client's limit, not the
  server's). "server CPU/req" is the server process's CPU time in the window divided by the
  requests it answered; for the gateway on PostgreSQL it leaves out PostgreSQL's own processes.
  Other work on the machine moves the figures; the load average says how quiet it was.
- The HTTP floor (`bench/baselines.py`) is Starlette returning the gateway's answer from memory.
  Plain strawberry is strawberry's own ASGI view over a schema of the same shape, with plain
  attributes over prebuilt objects (no database, no caches), encoding with orjson like the gateway.
"""

CLIENTS = {
    "wrk": "wrk (`bench/wrk.py`, `apt-get install wrk`), compiled, one thread in its own process,",
    "python": "`bench/load.py`, a raw asyncio HTTP/1.1 client in its own process,",
}

AIM = """\
Aim: the gateway at ≥ 1.0× the plain-strawberry baseline, and as close to the HTTP floor as caching
honestly allows (a cached public catalog read still reads the request, checks the caller and the
channel, and is dropped on price and stock events).
"""


@dataclass(frozen=True)
class Run:
    figures: list[Figures]
    command: str
    database: str  # "sqlite" or "postgres"
    answer_bytes: int
    shape: str
    concurrency: int
    warmup: float
    duration: float
    load_before: float
    client: str = "wrk"  # "wrk" or "python" (bench/load.py)

    @property
    def heading(self) -> str:
        return "Catalog" if self.database == "sqlite" else "Catalog on PostgreSQL"


def machine(load_before: float) -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = ", ".join(
        f"{name} {metadata.version(name)}"
        for name in ("strawberry-graphql", "graphql-core", "starlette", "uvicorn", "sqlalchemy")
    )
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{len(os.sched_getaffinity(0))} cores (`nproc`), {model}, "
        f"Python {platform.python_version()}; {versions}; {when}, "
        f"load average {load_before:.2f} before the run"
    )


def verdict(figures: list[Figures]) -> str:
    """Where the gateway lands against the aim, in plain words, from the figures."""
    by_name = {f.server: f for f in figures}
    off, on = by_name[GATEWAY_OFF], by_name[GATEWAY_ON]
    strawberry, floor = by_name[STRAWBERRY], by_name[FLOOR]
    uncached, cached = off.rps / strawberry.rps, on.rps / strawberry.rps
    parts = [
        f"Without the response cache the gateway answers at {uncached:.2f}× plain strawberry "
        + ("(the aim is met):" if uncached >= 1.0 else "and misses the aim:")
    ]
    off_ms = off.server_cpu_us / 1000 if off.server_cpu_us else 0
    strawberry_ms = strawberry.server_cpu_us / 1000 if strawberry.server_cpu_us else 0
    if uncached >= 1.0:
        parts.append(
            "the page is answered from its execution plan (transport/catalog_plan.py) with two "
            "statements, the page and its stock, over reference data the process keeps, "
            f"{off_ms:.1f} ms of CPU a request against {strawberry_ms:.1f} ms for plain strawberry, "
            "which parses, validates and resolves field by field."
        )
    else:
        parts.append(
            "each request builds a context, runs the document through async resolvers and "
            "DataLoaders, opens its own sessions for the SQL and encodes the answer, "
            f"{off_ms:.1f} ms of CPU against {strawberry_ms:.1f} ms for plain strawberry."
        )
    if abs(on.rps - off.rps) / off.rps < 0.10:
        parts.append("`QUANYI_RESPONSE_CACHE=1` changes nothing measurable: no answer is reused.")
    else:
        parts.append(
            f"With it, {cached:.1f}× plain strawberry and {on.rps / floor.rps:.0%} of the HTTP "
            f"floor: what stands between the cached gateway and the floor is the work a hit still "
            "does (reading and checking the request, the caller, the key) and the full executions "
            "when entries expire (see the profile below)."
        )
    if floor.client_cpu > 0.9:
        parts.append(
            f"The floor is bounded by the load generator ({floor.client_cpu:.0%} of a core), so "
            "the real floor is higher; server CPU per request is the sturdier comparison."
        )
    return " ".join(parts)


def section(run: Run) -> str:
    method = (
        METHOD.format(
            concurrency=run.concurrency, warmup=run.warmup, duration=run.duration,
            client=CLIENTS[run.client],
        )
        if run.database == "sqlite"
        else '- Measured as in "Catalog" above, with the gateway on PostgreSQL 127.0.0.1 '
        "(asyncpg) instead of SQLite.\n"
    )
    backend = "SQLite (aiosqlite, WAL)" if run.database == "sqlite" else "PostgreSQL (asyncpg)"
    return f"""## {run.heading}

A storefront's catalog page, `products(channel: "web", first: 20)` with each product's brand and
SKUs (price and stock): {run.shape}, {run.answer_bytes:,} bytes of JSON. Gateway on {backend}.

```
{run.command}
```

- Machine: {machine(run.load_before)}.
{method}
{markdown_table(run.figures)}

{AIM}
{verdict(run.figures)}
"""


def update(path: Path, run: Run) -> None:
    """Replaces the run's section of the document, or adds it; other sections stay as they are."""
    write_section(path, run.heading, section(run))


def write_section(path: Path, heading: str, new: str) -> None:
    """Replaces the section `## heading` (up to the next `## `) with `new`, or appends it."""
    text = path.read_text(encoding="utf-8") if path.exists() else INTRODUCTION
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: new + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + new
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")
