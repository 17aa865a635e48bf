"""The flash sale's table, and its section of docs/benchmarks.md."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import tables
from catalog_doc import machine, write_section
from flash_data import Audit
from flash_load import Tally

HEADING = "Flash sale"
GATEWAY = "gateway, placeOrder over GraphQL"
FLOOR = "database floor, raw asyncpg"


@dataclass(frozen=True)
class PathResult:
    path: str
    tally: Tally
    audit: Audit

    @property
    def oversold(self) -> int:
        return self.audit.oversold(self.tally.placed)

    def cpu_per_request_ms(self, cpu: float | None) -> float | None:
        answered = len(self.tally.latencies)
        return cpu / answered * 1000 if cpu is not None and answered else None

    @property
    def writes_per_request(self) -> float | None:
        answered = len(self.tally.latencies)
        writes = self.tally.app_writes
        return writes / answered if writes is not None and answered else None

    def busy(self, cpu: float | None) -> float | None:
        """Share of one core `cpu` seconds are over the sale's wall-clock time."""
        return cpu / self.tally.elapsed if cpu is not None and self.tally.elapsed else None


@dataclass(frozen=True)
class SaleRun:
    gateway: PathResult
    floor: PathResult
    command: str
    orders: int
    codes: int
    concurrency: int
    cap_seconds: float
    warmup_orders: int
    load_before: float
    server: dict[str, str]  # PostgreSQL's version and durability settings
    load_generator: str  # what sent the gateway's orders: wrk, or the Python client


HEADER = (
    "path",
    "placed/s",
    "refused/s",
    "p50 ms",
    "p99 ms",
    "sold",
    "refused",
    "errors",
    "oversold",
    "× floor",
    "app CPU/placed",
    "app CPU/refused",
    "PostgreSQL CPU/placed",
    "PostgreSQL CPU/refused",
    "app writes/placed",
    "app writes/refused",
)


def rows(run: SaleRun) -> list[tuple[str, ...]]:
    floor = run.floor.tally.orders_per_second
    table = []
    for result in (run.gateway, run.floor):
        tally = result.tally
        selling, sold_out = tally.phases()
        table.append((
            result.path,
            f"{tally.orders_per_second:,.0f}",
            f"{sold_out.rate:,.0f}",
            tables.ms(tally.quantile_ms(0.50)),
            tables.ms(tally.quantile_ms(0.99)),
            f"{tally.placed:,}",
            f"{tally.refused:,}",
            f"{tally.errors:,}",
            f"{result.oversold:,}",
            f"{tally.orders_per_second / floor:.3f}×" if floor else "–",
            _cpu(selling.per_attempt(selling.app_cpu, 1000)),
            _cpu(sold_out.per_attempt(sold_out.app_cpu, 1000)),
            _cpu(selling.per_attempt(selling.database_cpu, 1000)),
            _cpu(sold_out.per_attempt(sold_out.database_cpu, 1000)),
            _count(selling.per_attempt(selling.app_writes)),
            _count(sold_out.per_attempt(sold_out.app_writes)),
        ))
    return table


def _cpu(millis: float | None) -> str:
    return "–" if millis is None else f"{millis:.2f} ms"


def _count(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def text_table(run: SaleRun) -> str:
    return tables.text_table(HEADER, rows(run))


def markdown_table(run: SaleRun) -> str:
    return tables.markdown_table(HEADER, rows(run))


def round_trips_per_order(run: SaleRun) -> float | None:
    """Round trips to PostgreSQL per placed order through the gateway: its writes per
    attempt while selling, less the HTTP answer's (an attempt refused at the gate writes
    only its answer and its log line)."""
    selling, sold_out = run.gateway.tally.phases()
    placed = selling.per_attempt(selling.app_writes)
    answer = sold_out.per_attempt(sold_out.app_writes)
    if placed is None or answer is None:
        return None
    return placed - answer


def verdict(run: SaleRun) -> str:
    """Where the gateway lands against the aim, in plain words, from the figures."""
    gateway, floor = run.gateway, run.floor
    g, f = gateway.tally, floor.tally
    parts = []
    if gateway.oversold == 0 and floor.oversold == 0:
        parts.append(
            f"Nothing was oversold: through the gateway {g.placed:,} orders hold "
            f"{gateway.audit.reserved:,} codes and at the floor {f.placed:,} hold "
            f"{floor.audit.reserved:,}, one order line per code; the other {g.refused:,} and "
            f"{f.refused:,} buyers were told OUT_OF_STOCK."
        )
    else:
        parts.append(f"Oversold: {gateway.oversold} through the gateway, {floor.oversold} at the floor.")
    if f.orders_per_second:
        parts.append(
            f"The gateway sells at {g.orders_per_second / f.orders_per_second:.2f}× the floor's rate "
            f"({g.orders_per_second:,.0f} against {f.orders_per_second:,.0f} orders/s)."
        )
    selling, sold_out = g.phases()
    floor_selling, floor_sold_out = f.phases()
    placed_ms = selling.per_attempt(selling.app_cpu, 1000)
    refused_ms = sold_out.per_attempt(sold_out.app_cpu, 1000)
    busy = selling.app_cpu / selling.seconds if selling.app_cpu is not None and selling.seconds else None
    if placed_ms is not None and busy is not None:
        parts.append(
            f"While selling, its one worker was busy {busy:.0%} of the time, {placed_ms:.2f} ms of CPU "
            f"per attempt."
        )
    if refused_ms is not None and floor_sold_out.rate:
        parts.append(
            f"Once the SKU was sold out it refused {sold_out.rate:,.0f} attempts/s at {refused_ms:.2f} ms "
            f"of CPU each (the floor, which asks the database every time, {floor_sold_out.rate:,.0f}/s)."
        )
    trips = round_trips_per_order(run)
    floor_trips = floor_selling.per_attempt(floor_selling.app_writes)
    if trips is not None and floor_trips is not None:
        parts.append(
            f"A placed order costs the gateway {trips:.1f} round trips to PostgreSQL "
            f"(BEGIN and COMMIT among them, when sent), the floor {floor_trips:.1f}."
        )
    client = _client_busy(g)
    parts.append(
        f"The load generator's process ({run.load_generator}) was busy {client:.0%} of the gateway's "
        f"sale, {_client_ms(g):.3f} ms of CPU per request"
        + (": it was not the limit." if client < 0.8 else ": close to a core, so it may be part of the limit.")
    )
    return " ".join(parts)


def load_generator(run: SaleRun) -> str:
    """What sent the gateway's orders, and the CPU it spent doing so."""
    g = run.gateway.tally
    return (
        f"{run.load_generator}: {g.client_cpu:.2f} s of CPU for {g.sent:,} requests, "
        f"{_client_ms(g):.3f} ms each, busy {_client_busy(g):.0%} of the sale"
    )


def _client_ms(tally: Tally) -> float:
    """The load generator's CPU per request sent, in milliseconds."""
    return tally.client_cpu / tally.sent * 1000 if tally.sent else 0.0


def _client_busy(tally: Tally) -> float:
    return tally.client_cpu / tally.elapsed if tally.elapsed else 0.0


def section(run: SaleRun) -> str:
    server = run.server
    sells_out = (
        "so the sale sells out"
        if run.orders > run.codes
        else "fewer orders than codes, so the pool does not sell out"
    )
    return f"""## {HEADING}

A hot CARD_CODE SKU on the public channel `web`: {run.orders:,} guest `placeOrder` mutations
(quantity 1, an idempotency key and a buyer each) from {run.concurrency} concurrent connections
against a pool of {run.codes:,} codes ({run.orders / run.codes:.0f}× oversubscribed), {sells_out}.
Beside it, in the same run, the database floor: the same reservation and inserts as raw
asyncpg statements, on a fresh pool of {run.codes:,} codes of another SKU.

```
{run.command}
```

- Machine: {machine(run.load_before)}.
- Database: PostgreSQL {server["server_version"]} on 127.0.0.1 (fsync {server["fsync"]},
  synchronous_commit {server["synchronous_commit"]}), asyncpg {metadata.version("asyncpg")}; a
  database created for the run, migrated, loaded with the demo data and the sale's SKUs
  (`bench/flash_data.py`), dropped after.
- Gateway: one uvicorn worker (`gateway:create_app`), default settings: every order is screened
  by the demo's risk rules (in-process counters) before its write transaction, the hot SKU
  has a purchase limit on the channel (one per buyer per day) and a channel quota of twice
  its pool spread over the configured slots (8), so the buyers' counts and the quota are
  taken in every order's transaction; idempotency keys are checked by the order's unique
  index. The warm-up SKU has the same limit and quota, so the warm-up runs the sale's path.
  The gateway's load generator, {run.load_generator}, runs in its own process: HTTP/1.1
  keep-alive connections, one mutation at a time each, every answer classed as placed,
  OUT_OF_STOCK or an error and timed on the clock the counters are read by. wrk is compiled,
  so on two cores it leaves the cycles to the gateway and PostgreSQL; the Python client
  (`--client python`) costs 0.11 ms of CPU a request on a quiet machine, 0.33 ms on a loaded one. Its CPU per request is given below
  the table.
- Floor (`bench/flash_floor.py`): an asyncpg pool of {run.concurrency} connections and as many
  tasks; per order one transaction: INSERT order, INSERT order_line, the claim `UPDATE card_code
  … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING id`, INSERT allocation, INSERT
  order_event (rolled back when no code is left).
- Each path first places {run.warmup_orders} orders of a warm-up SKU, then the sale
  (capped at {run.cap_seconds:g} s). placed/s: orders placed ÷ time from the first request to the
  last order placed (the sell-out); refused/s: attempts answered after the sell-out ÷ the time
  they took; p50/p99: every request, placed or refused. Per placed and per refused: the
  counters (read every 50 ms) over the selling phase and over the sold-out phase, divided by
  the attempts answered in each. oversold, read from
  the database afterwards: codes held by more than one order line + (orders placed − codes
  RESERVED); the run fails unless it is 0 and orders placed = min(orders sent, codes). CPU per
  attempt: the application process (the gateway's worker; for the floor the asyncpg process)
  and all of PostgreSQL's processes. app writes: the application process's
  write system calls (`syscw` in `/proc/<pid>/io`) per attempt, one per message it sends
  PostgreSQL (each statement, BEGIN, COMMIT, ROLLBACK, a pool's checks), plus the gateway's HTTP
  answer (one send under `quanyi serve`) and its request log line. An attempt the sold-out gate
  refuses writes only those two, so "round trips per placed order" is the placed attempts'
  writes less the refused ones'.

{markdown_table(run)}

Aim: 0 oversold on both paths, and the gateway's throughput as near the floor as the GraphQL
layer allows.

{verdict(run)}
"""


def update(path: Path, run: SaleRun) -> None:
    write_section(path, HEADING, section(run))
