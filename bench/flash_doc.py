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


HEADER = (
    "path",
    "orders/s",
    "p50 ms",
    "p99 ms",
    "sold",
    "refused",
    "errors",
    "oversold",
    "× floor",
    "app CPU/req",
    "PostgreSQL CPU/req",
    "app writes/req",
)


def rows(run: SaleRun) -> list[tuple[str, ...]]:
    floor = run.floor.tally.orders_per_second
    return [
        (
            result.path,
            f"{result.tally.orders_per_second:,.0f}",
            tables.ms(result.tally.quantile_ms(0.50)),
            tables.ms(result.tally.quantile_ms(0.99)),
            f"{result.tally.placed:,}",
            f"{result.tally.refused:,}",
            f"{result.tally.errors:,}",
            f"{result.oversold:,}",
            f"{result.tally.orders_per_second / floor:.3f}×" if floor else "–",
            _cpu(result.cpu_per_request_ms(result.tally.app_cpu)),
            _cpu(result.cpu_per_request_ms(result.tally.database_cpu)),
            "–" if result.writes_per_request is None else f"{result.writes_per_request:.1f}",
        )
        for result in (run.gateway, run.floor)
    ]


def _cpu(millis: float | None) -> str:
    return "–" if millis is None else f"{millis:.2f} ms"


def text_table(run: SaleRun) -> str:
    return tables.text_table(HEADER, rows(run))


def markdown_table(run: SaleRun) -> str:
    return tables.markdown_table(HEADER, rows(run))


def verdict(run: SaleRun) -> str:
    """Where the gateway lands against the aim, in plain words, from the figures."""
    gateway, floor = run.gateway, run.floor
    parts = []
    if gateway.oversold == 0 and floor.oversold == 0:
        g, f = gateway.tally, floor.tally
        sold = (g.placed, g.refused, gateway.audit.reserved)
        alike = sold == (f.placed, f.refused, floor.audit.reserved)
        held = (
            f"on each path {g.placed:,} orders hold {gateway.audit.reserved:,} codes"
            if alike
            else f"{g.placed:,} orders through the gateway hold {gateway.audit.reserved:,} codes "
            f"and {f.placed:,} at the floor hold {floor.audit.reserved:,}"
        )
        refused = f"{g.refused:,}" if alike else f"{g.refused:,} and {f.refused:,}"
        parts.append(
            f"Nothing was oversold: {held}, one order line per code"
            + (
                f", and the other {refused} buyers were told OUT_OF_STOCK."
                if g.refused or f.refused
                else " (more codes than orders: the pool did not sell out)."
            )
        )
    else:
        parts.append(
            f"Oversold: {gateway.oversold} through the gateway, {floor.oversold} at the floor."
        )
    if floor.tally.orders_per_second:
        ratio = gateway.tally.orders_per_second / floor.tally.orders_per_second
        parts.append(
            f"The gateway sells at {ratio:.0%} of the floor's rate "
            f"({gateway.tally.orders_per_second:,.0f} against "
            f"{floor.tally.orders_per_second:,.0f} orders/s)."
        )
    busy = gateway.busy(gateway.tally.app_cpu)
    app_ms = gateway.cpu_per_request_ms(gateway.tally.app_cpu)
    database_ms = gateway.cpu_per_request_ms(gateway.tally.database_cpu)
    if busy is not None and app_ms is not None and database_ms is not None:
        bound = (
            "so the limit is the worker's own CPU, not the database"
            if busy >= 0.75
            else "so the worker spends much of the sale waiting (on PostgreSQL, its row locks, "
            "or its commits), not computing"
        )
        parts.append(
            f"During the sale its one worker was busy {busy:.0%} of the time: {app_ms:.1f} ms of "
            f"CPU per request in the worker against {database_ms:.1f} ms in PostgreSQL, {bound}."
        )
    writes, floor_writes = gateway.writes_per_request, floor.writes_per_request
    if writes is not None and floor_writes is not None:
        parts.append(
            f"What stands between is the work around the same writes: the worker makes "
            f"{writes:.0f} write calls per request (its round trips to PostgreSQL, and the HTTP "
            f"answer) where the floor makes {floor_writes:.0f}, and each statement of "
            "`services/orders/placing.py` and `services/inventory/reservation.py` is built, looked up in the "
            "compiled cache, run through the greenlet bridge and flushed or read back by the "
            "ORM, inside a GraphQL request (parse, validate, execute, encode) with its own "
            "DataLoaders and sessions."
        )
    parts.append(
        "More workers (`quanyi serve --workers N`) raise the rate until PostgreSQL's row locks "
        "and commits are the limit; fewer round trips per order raise what each worker does."
    )
    return " ".join(parts)


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
against a pool of {run.codes:,} codes, {sells_out}. Beside it, in the same run, the
database floor: the same reservation and inserts as raw asyncpg statements, on a fresh pool of
{run.codes:,} codes of another SKU.

```
{run.command}
```

- Machine: {machine(run.load_before)}.
- Database: PostgreSQL {server["server_version"]} on 127.0.0.1 (fsync {server["fsync"]},
  synchronous_commit {server["synchronous_commit"]}), asyncpg {metadata.version("asyncpg")}; a
  database created for the run, migrated, loaded with the demo data and the sale's SKUs
  (`bench/flash_data.py`), dropped after.
- Gateway: one uvicorn worker (`gateway:create_app`), default settings: every order is screened
  by the demo's risk rules (in-process counters) in a read session before its write transaction.
  The load generator
  (`bench/flash_load.py`) runs in its own process: raw HTTP/1.1 keep-alive connections, one
  mutation at a time each, every answer classed as placed, OUT_OF_STOCK or an error.
- Floor (`bench/flash_floor.py`): an asyncpg pool of {run.concurrency} connections and as many
  tasks; per order one transaction: INSERT order, INSERT order_line, the claim `UPDATE card_code
  … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED) RETURNING id`, INSERT allocation, INSERT
  order_event (rolled back when no code is left).
- Each path first places {run.warmup_orders} orders of a warm-up SKU, then the sale
  (capped at {run.cap_seconds:g} s). orders/s: orders placed ÷ time from the first request to the
  last order placed (the sell-out); p50/p99: every request, placed or refused. oversold, read from
  the database afterwards: codes held by more than one order line + (orders placed − codes
  RESERVED); the run fails unless it is 0 and orders placed = min(orders sent, codes). CPU per
  request: the application process (the gateway's worker; for the floor the asyncpg process)
  and all of PostgreSQL's processes, over the sale. app writes/req: the application process's
  write system calls (`syscw` in `/proc/<pid>/io`) per request, one per message it sends
  PostgreSQL (each statement, BEGIN, COMMIT, ROLLBACK, a pool's checks), plus the gateway's HTTP
  answer: its round trips.

{markdown_table(run)}

Aim: 0 oversold on both paths, and the gateway's throughput as near the floor as the GraphQL
layer allows.

{verdict(run)}
"""


def update(path: Path, run: SaleRun) -> None:
    write_section(path, HEADING, section(run))
