"""The catalog page while a SKU on it sells: `python bench/catalog.py --during-sale`.

One gateway worker serves both the page and the orders. A buyer process places orders of one
SKU on the page (a top-up SKU with stock enough for the whole run) at a steady rate, each
from a buyer of its own, while the load generator reads the page as fast as it is answered.
Every order moves the SKU's stock, so every order is a stock event. Measured in the same run:

- the cached page with no orders (its quiet rate);
- the cached page during the orders;
- the page without the cache during the orders: what every read cost when each stock event
  dropped the cache (every read missed).

Answers are checked for data and no errors, not byte for byte: the stock in them moves.
Prints the table and writes the "Catalog during a sale" section of docs/benchmarks.md (with
"on PostgreSQL" for --database postgres).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import tables
from catalog_doc import machine, write_section
from load import Connection, Plan, http_post, server_cpu
from load import run as drive
from report import Figures
from servers import HOST, ROOT, fetch, serving

PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { number } userErrors { code } } }
"""
CACHED_QUIET = "cached page, no orders"
CACHED_SALE = "cached page, during the orders"
UNCACHED_SALE = "page without the cache, during the orders"
# The most connections the buyers open. Orders are sent on time whatever the earlier ones are
# doing, so the rate offered is kept while answers take up to BUYER_CONNECTIONS / rate (0.64 s
# at 100/s). A fixed 8 sent one order per connection at a time and so capped the rate at
# 8 / latency: 34-81 orders/s in the first runs, where an order took 100-250 ms.
BUYER_CONNECTIONS = 64


@dataclass(frozen=True, slots=True)
class SalePlan:
    host: str
    port: int
    sku_gid: str
    rate: float  # orders a second
    connections: int
    seconds: float
    key_prefix: str


@dataclass
class SaleTally:
    sent: int = 0
    placed: int = 0
    errors: int = 0
    first_error: str | None = None
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu: float = 0.0  # the buyer process's CPU, a share of one core: whether it is the limit
    connections: int = 0  # the connections it needed to keep the rate

    def quantile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def _order(plan: SalePlan, n: int) -> bytes:
    variables = {"input": {
        "channel": "web", "idempotencyKey": f"{plan.key_prefix}-order-{n:08d}",
        "lines": [{"skuId": plan.sku_gid, "quantity": 1}],
        "buyer": {"phone": f"139{n:08d}", "rechargeAccount": f"bench-{n}", "deviceId": f"bench-{n}"},
    }}
    return http_post(plan.host, plan.port, "/graphql",
                     orjson.dumps({"query": PLACE, "operationName": "Place", "variables": variables}))


async def _sell(plan: SalePlan) -> SaleTally:
    """Order n is sent at start + n / rate whatever the earlier ones are doing (an open loop).

    It goes on an idle keep-alive connection, or on a new one when all are busy, up to
    `plan.connections`; only past that does an order wait for a connection (and the rate
    reached falls short of the rate offered, which the tally shows).
    """
    loop = asyncio.get_running_loop()
    tally = SaleTally()
    idle: list[Connection] = []
    opened: list[Connection] = []
    freed = asyncio.Condition()
    total = int(plan.rate * plan.seconds)
    cpu = time.process_time()
    start = time.perf_counter()

    async def connection() -> Connection:
        async with freed:
            while not idle and len(opened) >= plan.connections:
                await freed.wait()
            while idle:
                reused = idle.pop()
                if not reused.closed:
                    return reused
                # Closed by the server while idle (uvicorn's keep-alive timeout): a new one instead.
                opened.remove(reused)
            placeholder = Connection()
            opened.append(placeholder)
        try:
            made = (await loop.create_connection(Connection, plan.host, plan.port))[1]
        finally:
            opened.remove(placeholder)
        opened.append(made)
        return made

    async def release(used: Connection) -> None:
        async with freed:
            idle.append(used)
            freed.notify()

    async def order(n: int) -> None:
        used = await connection()
        sent = time.perf_counter()
        tally.sent += 1
        try:
            status, body = await used.exchange(_order(plan, n))
        except (ConnectionError, ValueError, OSError, RuntimeError) as error:
            # RuntimeError: uvloop's word for a write to a transport closed under it.
            tally.errors += 1
            tally.first_error = tally.first_error or repr(error)
            opened.remove(used)
            used.close()
            async with freed:
                freed.notify()
            return
        tally.latencies.append(time.perf_counter() - sent)
        await release(used)
        answer = orjson.loads(body) if status == 200 else {}
        placed = ((answer.get("data") or {}).get("placeOrder") or {}).get("order")
        if placed:
            tally.placed += 1
        else:
            tally.errors += 1
            tally.first_error = tally.first_error or f"{status}: {body[:300]!r}"

    orders: list[asyncio.Task[None]] = []
    try:
        for n in range(total):
            await asyncio.sleep(max(0.0, start + n / plan.rate - time.perf_counter()))
            orders.append(asyncio.create_task(order(n)))
        await asyncio.gather(*orders)
    finally:
        for made in opened:
            made.close()
    tally.seconds = time.perf_counter() - start
    tally.cpu = (time.process_time() - cpu) / tally.seconds
    tally.connections = len(opened)
    return tally


def sell(plan: SalePlan) -> SaleTally:
    """The entry of the buyer process."""
    try:
        import uvloop

        return uvloop.run(_sell(plan))
    except ImportError:
        return asyncio.run(_sell(plan))


@dataclass(frozen=True)
class Measured:
    figures: Figures
    sale: SaleTally | None


def _hot_sku(body: bytes) -> tuple[str, str]:
    """A top-up SKU on the page (its global ID and code): its stock is a counter."""
    for edge in orjson.loads(body)["data"]["products"]["edges"]:
        for sku in edge["node"]["skus"]:
            if sku["kind"] == "DIRECT_RECHARGE":
                return sku["id"], sku["code"]
    raise SystemExit("no top-up SKU on the catalog page to sell")


async def _restock(env: dict[str, str], code: str, units: int) -> None:
    from sqlalchemy import select

    from config import Settings
    from domain.slots import DEFAULT_SLOTS
    from models import Sku
    from services.core.database import Database
    from services.inventory.slots import rebalance

    db = Database.connect(Settings.from_env(env))
    try:
        async with db.sessions() as session, session.begin():
            sku_id = await session.scalar(select(Sku.id).where(Sku.code == code))
            assert sku_id is not None and await rebalance(session, sku_id, units, DEFAULT_SLOTS) is None
    finally:
        await db.dispose()


def run(args: Any, env: dict[str, str], folder: Path, body: bytes, load_before: float) -> int:
    """Measures the three rows on the prepared database `env`; writes the section."""
    from catalog import check_answer  # the page and its checks live beside the other catalog runs

    log = folder / "servers.log"
    spawn = multiprocessing.get_context("spawn")
    sku_gid, code = _hot_sku(fetch_first(env, folder, body, log))
    asyncio.run(_restock(env, code, 10_000_000))
    measured: list[Measured] = []
    window = args.warmup + args.duration
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        for name, cache, selling in ((CACHED_QUIET, "1", False), (CACHED_SALE, "1", True), (UNCACHED_SALE, "0", True)):
            gateway_env = {**env, "QUANYI_RESPONSE_CACHE": cache}
            with serving(name, "gateway:create_app", gateway_env, app_dir=ROOT, cwd=folder, probe=body, log=log) as server:
                status, answer = fetch(server.port, body)
                if status != 200:
                    raise SystemExit(f"{name}: the gateway answered {status}: {answer[:300]!r}")
                products, skus = check_answer(answer)
                print(f"measuring {name} …", flush=True)
                sale = None
                if selling:
                    plan = SalePlan(HOST, server.port, sku_gid, args.orders_per_second, BUYER_CONNECTIONS, window + 1.0,
                                    f"sale-{os.getpid()}-{len(measured)}")
                    sale = pool.submit(sell, plan)
                    time.sleep(0.5)  # the orders are flowing before the warm-up starts
                page = Plan(HOST, server.port, http_post(HOST, server.port, "/graphql", body), None,
                            args.concurrency, args.warmup, args.duration, server.pid)
                outcome = pool.submit(drive, page).result()
                measured.append(Measured(Figures.of(name, outcome), sale.result() if sale else None))
    shape = f"{products} products, {skus} SKUs"
    heading = "Catalog during a sale" + (" on PostgreSQL" if args.database == "postgres" else "")
    print(f"\n{heading}: {shape}; {args.orders_per_second:g} orders/s of {code}; {args.concurrency} page "
          f"clients, {args.duration:g} s after {args.warmup:g} s warm-up\n")
    print(tables.text_table(HEADER, _rows(measured)))
    print("\n" + verdict(measured))
    failed = sum(m.figures.failed for m in measured) + sum(m.sale.errors for m in measured if m.sale)
    if failed:
        print(f"\n{failed} page answers or orders failed: figures not written")
        first = next((m.sale.first_error for m in measured if m.sale and m.sale.first_error), None)
        if first:
            print(f"first order error: {first}")
        return 1
    if not args.no_doc:
        write_section(args.doc, heading, _section(heading, args, shape, code, measured, load_before))
        print(f'\nwrote the section "{heading}" of {args.doc}')
    return 0


def fetch_first(env: dict[str, str], folder: Path, body: bytes, log: Path) -> bytes:
    with serving("gateway", "gateway:create_app", env, app_dir=ROOT, cwd=folder, probe=body, log=log) as server:
        return fetch(server.port, body)[1]


HEADER = ("page", "page req/s", "p50 ms", "p99 ms", "server CPU/req", "client CPU", "orders/s", "order p50 / p99 ms",
          "buyer CPU, conns")


def _rows(measured: list[Measured]) -> list[tuple[str, ...]]:
    rows = []
    for m in measured:
        f, sale = m.figures, m.sale
        cpu = "–" if f.server_cpu_us is None else (
            f"{f.server_cpu_us:.0f} µs" if f.server_cpu_us < 1000 else f"{f.server_cpu_us / 1000:.2f} ms")
        orders = f"{sale.placed / sale.seconds:.0f}" if sale and sale.seconds else "–"
        order_ms = f"{tables.ms(sale.quantile_ms(0.5))} / {tables.ms(sale.quantile_ms(0.99))}" if sale else "–"
        buyer = f"{sale.cpu:.0%}, {sale.connections}" if sale else "–"
        rows.append((f.server, f"{f.rps:,.0f}", tables.ms(f.p50_ms), tables.ms(f.p99_ms), cpu,
                     f"{f.client_cpu:.0%}", orders, order_ms, buyer))
    return rows


def verdict(measured: list[Measured]) -> str:
    by = {m.figures.server: m.figures for m in measured}
    quiet, sale, uncached = by[CACHED_QUIET], by[CACHED_SALE], by[UNCACHED_SALE]
    share = sale.rps / quiet.rps if quiet.rps else 0.0
    met = share >= 0.5 and sale.p99_ms < 50
    return (
        f"During the orders the cached page answers at {share:.0%} of its quiet rate with a p99 of "
        f"{tables.ms(sale.p99_ms)} ms ({'meets' if met else 'misses'} the aim of ≥ 50% with p99 < 50 ms); "
        f"without the cache, as when every stock event dropped it, {uncached.rps:,.0f} req/s "
        f"({uncached.rps / quiet.rps:.1%} of the quiet cached rate) with a p99 of {tables.ms(uncached.p99_ms)} ms."
    )


def _section(heading: str, args: Any, shape: str, code: str, measured: list[Measured], load_before: float) -> str:
    command = "python bench/catalog.py --during-sale" + (" --database postgres" if args.database == "postgres" else "")
    backend = "SQLite (aiosqlite, WAL)" if args.database == "sqlite" else "PostgreSQL (asyncpg)"
    return f"""## {heading}

The catalog page of "Catalog" ({shape}) while a top-up SKU on it ({code}) sells
{args.orders_per_second:g} orders a second through the same gateway worker. Gateway on {backend}.

```
{command}
```

- Machine: {machine(load_before)}; load average {os.getloadavg()[0]:.2f} after it.
- One gateway worker serves the page and the orders. A buyer process (`bench/catalog_sale.py`)
  sends order n at n / {args.orders_per_second:g} s whatever the earlier orders are doing, on an idle keep-alive
  connection or a new one (at most {BUYER_CONNECTIONS}; "conns" is how many it opened), each from a buyer of
  its own; each order reserves a unit of the SKU, so each is a stock event. "orders/s" is the
  rate placed; "buyer CPU" the buyer process's share of a core, so it is not the limit. The page's load
  generator (`bench/load.py`) reads the page on {args.concurrency} connections as fast as it is answered,
  {args.warmup:g} s of warm-up then {args.duration:g} s measured; an answer must be 200 with data and no
  errors (its stock moves, so it is not compared byte for byte).
- "server CPU/req" is the gateway's CPU over the window divided by the pages it answered: during
  the orders it includes theirs. The three rows run in turn on one database, buyers, page
  clients and gateway sharing the machine's 2 cores with PostgreSQL when it is used.
- The stock a cached page shows is at most `QUANYI_RESPONSE_CACHE_SECONDS` (1 s) behind the
  database (README, "Cached catalog answers and stock"); orders no longer drop the cache. The
  row without the cache is what every read cost when each stock event dropped it.

{tables.markdown_table(HEADER, _rows(measured))}

Aim: during the orders, the cached page at ≥ 50% of its quiet rate with p99 < 50 ms.
{verdict(measured)}
"""
