"""Flash sale benchmark: a hot SKU under concurrent placeOrder on PostgreSQL, beside the floor.

    python bench/flash_sale.py [--orders 3000] [--concurrency 32] [--codes 2000] [--duration 60]
                               [--client wrk|python]

Creates a PostgreSQL database for the run on 127.0.0.1 (migrated, the demo data, and a hot
CARD_CODE SKU with --codes codes on the channel `web`), serves it with one uvicorn worker of
the gateway, and sends --orders placeOrder mutations from --concurrency connections, more
orders than codes so the sale sells out; wrk sends them when it is installed, so the load
generator leaves the cycles to the gateway and PostgreSQL (`--client python`: the Python client).
Then the database floor sells a copy of the pool with raw asyncpg statements. Counts in the database what each path sold, prints the table
and "oversold: N" (exit 1 unless 0), writes the "Flash sale" section of docs/benchmarks.md,
and drops the database whatever happened.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson
from servers import HOST, ROOT, serving

# The project's modules from this working tree, whatever the virtualenv's install points at.
sys.path.insert(1, str(ROOT))

import flash_doc
import flash_wrk
from database import bench_database
from flash_data import CHANNEL, asyncpg_dsn, audit, stock_flash_sale
from flash_doc import FLOOR, GATEWAY, PathResult, SaleRun, text_table
from flash_event import schedule_event, seconds_report
from flash_floor import FloorPlan, FloorSale, run_floor
from flash_load import GatewayPlan, Sale, Tally, run_gateway

from config import Settings
from schema.relay import encode_id

LOAD_GENERATORS = {
    "wrk": f"wrk with {flash_wrk.THREADS} thread{'s' if flash_wrk.THREADS > 1 else ''} and bench/flash_rush.lua",
    "python": "the Python asyncio client of bench/flash_load.py",
}
# The gateway is ready once it answers a query that reads the database.
PROBE = orjson.dumps({"query": "{ channels { code } }"})


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--orders", type=int, default=10_000, help="placeOrder mutations sent (10× the codes)"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent connections")
    parser.add_argument(
        "--client", choices=("wrk", "python"), default="wrk" if flash_wrk.available() else "python",
        help="what sends the gateway's orders: wrk (compiled; the default when installed) or the "
        "Python asyncio client",
    )
    parser.add_argument("--codes", type=int, default=1_000, help="codes of the hot SKU")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="cap in seconds on each path's sale"
    )
    parser.add_argument(
        "--warmup", type=int, default=200, help="orders each path places first, of another SKU"
    )
    parser.add_argument(
        "--sale-event", type=float, metavar="LEAD", nargs="?", const=12.0, default=None,
        help="run as a sale event (预约抢购): scheduled LEAD seconds ahead (12), buyers registered, "
        "the rush at its start; writes no figures",
    )
    parser.add_argument(
        "--workers", type=int, default=1,
        help="gateway worker processes (uvicorn --workers); figures are written for 1 only",
    )
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    parser.add_argument(
        "--no-quota",
        action="store_true",
        help="no channel quota on the hot SKU: measures what its one shared row costs",
    )
    parser.add_argument(
        "--counter",
        action="store_true",
        help="the hot SKU is a direct top-up with counter stock (--codes units in one row), not codes",
    )
    parser.add_argument(
        "--slots", type=int, default=8,
        help="with --counter: the slots each SKU's counter stock is spread over (1: one row)",
    )
    args = parser.parse_args(argv)
    if args.client == "wrk" and not flash_wrk.available():
        parser.error(f"--client wrk: {flash_wrk.MISSING}")
    for name in ("orders", "concurrency", "codes", "warmup", "workers", "slots"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"note: load average {load_before:.2f}: other work on this machine moves the figures")
    run_id = secrets.token_hex(3)
    spawn = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="quanyi-flash-") as scratch,
        ProcessPoolExecutor(max_workers=1, mp_context=spawn) as client,
    ):
        folder = Path(scratch)
        log = folder / "gateway.log"
        print("preparing a PostgreSQL database: migrate, demo data, the sale's SKUs …", flush=True)
        with bench_database("postgres", folder, catalog=False) as env:
            url = env["QUANYI_DATABASE_URL"]
            shelf = asyncio.run(
                stock_flash_sale(
                    Settings.from_env(env), args.codes, 2 * args.warmup, quota=not args.no_quota,
                    counter=args.counter, slots=args.slots,
                )
            )

            with serving(
                "gateway", "gateway:create_app", env, app_dir=ROOT, cwd=folder, probe=PROBE, log=log,
                workers=args.workers,
            ) as server:
                print(
                    f"gateway: pid {server.pid} ({args.workers} worker process"
                    f"{'es' if args.workers > 1 else ''}, CPU counted over all), "
                    f"port {server.port}; warm-up of {args.warmup} "
                    f"orders, then {args.orders:,} orders for {args.codes:,} codes …",
                    flush=True,
                )
                sale_gid = str(encode_id("Sku", shelf.gateway_sku))
                starts_at = None
                if args.sale_event is not None:
                    starts_at = schedule_event(
                        Settings.from_env(env), f"http://{HOST}:{server.port}", sale_gid, CHANNEL,
                        args.orders, args.sale_event,
                    )
                    print(f"sale event: starts in {starts_at - time.time():.1f} s, "
                          f"{args.orders:,} buyers registered", flush=True)
                plan = GatewayPlan(
                    host=HOST,
                    port=server.port,
                    gateway_pid=server.pid,
                    channel=CHANNEL,
                    concurrency=args.concurrency,
                    cap_seconds=args.duration,
                    warmup=Sale(
                        str(encode_id("Sku", shelf.warmup_sku)), args.warmup, f"warm-{run_id}", args.counter
                    ),
                    sale=Sale(sale_gid, args.orders, f"rush-{run_id}", args.counter),
                    sale_starts_at=starts_at,
                )
                print(f"gateway's load generator: {LOAD_GENERATORS[args.client]}", flush=True)
                runner = flash_wrk.run_gateway if args.client == "wrk" else run_gateway
                warmup, gateway = client.submit(runner, plan).result()
                _warmed_up(GATEWAY, warmup, log)

            print(
                f"floor: warm-up of {args.warmup} orders, then {args.orders:,} orders …", flush=True
            )
            floor_plan = FloorPlan(
                dsn=asyncpg_dsn(url),
                channel_id=shelf.channel_id,
                price_fen=shelf.price_fen,
                concurrency=args.concurrency,
                cap_seconds=args.duration,
                warmup=FloorSale(shelf.warmup_sku, args.warmup, f"W{run_id}"),
                sale=FloorSale(shelf.floor_sku, args.orders, f"S{run_id}"),
                counter=args.counter,
            )
            floor_warmup, floor = client.submit(run_floor, floor_plan).result()
            _warmed_up(FLOOR, floor_warmup, None)
            audits, server_info = asyncio.run(audit(url, [shelf.gateway_sku, shelf.floor_sku], counter=args.counter))

    run = SaleRun(
        gateway=PathResult(GATEWAY, gateway, audits[shelf.gateway_sku]),
        floor=PathResult(FLOOR, floor, audits[shelf.floor_sku]),
        command=_command(args),
        orders=args.orders,
        codes=args.codes,
        concurrency=args.concurrency,
        cap_seconds=args.duration,
        warmup_orders=args.warmup,
        load_before=load_before,
        server=server_info,
        load_generator=LOAD_GENERATORS[args.client],
    )
    print(
        f"\n{args.orders:,} orders for {args.codes:,} codes, {args.concurrency} connections; "
        f"PostgreSQL {server_info['server_version']}\n"
    )
    print(text_table(run))
    print()
    trips = flash_doc.round_trips_per_order(run)
    print(f"gateway: {run.gateway.tally.orders_per_second / max(run.floor.tally.orders_per_second, 1e-9):.3f}× the floor")
    if trips is not None:
        print(f"gateway: {trips:.1f} round trips to PostgreSQL per placed order")
    print(f"gateway's load generator: {flash_doc.load_generator(run)}")
    print(flash_doc.verdict(run))
    print()
    problems = [p for result in (run.gateway, run.floor) for p in _checks(result, args.codes)]
    print(f"oversold: {run.gateway.oversold + run.floor.oversold}")
    print(seconds_report(gateway))
    if problems:
        print("\n" + "\n".join(problems) + "\nfigures not written")
        return 1
    if not args.no_doc and args.sale_event is None and args.workers == 1 and not args.counter:
        flash_doc.update(args.doc, run)
        print(f'\nwrote the section "{flash_doc.HEADING}" of {args.doc}')
    return 0


def _warmed_up(path: str, warmup: Tally, log: Path | None) -> None:
    if warmup.errors:
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-25:]) if log else ""
        raise SystemExit(
            f"{path}: {warmup.errors} errors in the warm-up, first: {warmup.first_error}{tail}"
        )


def _checks(result: PathResult, codes: int) -> list[str]:
    """Prints what the database holds for one path; returns what is wrong with it."""
    tally, held = result.tally, result.audit
    expected = min(tally.sent, codes)
    print(
        f"{result.path}: {tally.placed:,} placed of {tally.sent:,} sent for {codes:,} codes"
        f"{' (stopped by --duration)' if tally.capped else ''}; in the database "
        f"{held.reserved:,} codes RESERVED, {held.held_twice} held by more than one line, "
        f"{held.orders:,} orders: oversold {result.oversold}"
    )
    problems = []
    if result.oversold:
        problems.append(f"{result.path}: OVERSOLD {result.oversold}")
    if tally.placed != expected:
        problems.append(f"{result.path}: {tally.placed:,} orders placed, expected {expected:,}")
    if held.orders != tally.placed or held.reserved != tally.placed:
        problems.append(
            f"{result.path}: the database holds {held.orders:,} orders and {held.reserved:,} "
            f"reserved codes for {tally.placed:,} orders placed"
        )
    if held.overdrawn or held.unrecorded:
        problems.append(
            f"{result.path}: {held.overdrawn} lines hold more codes than asked, "
            f"{held.unrecorded} reserved codes have no allocation"
        )
    if tally.errors:
        problems.append(f"{result.path}: {tally.errors} errors, first: {tally.first_error}")
    return problems


def _command(args: argparse.Namespace) -> str:
    return "python bench/flash_sale.py" + "".join(
        f" {flag} {value}"
        for flag, value, default in (
            ("--orders", str(args.orders), "10000"),
            ("--concurrency", str(args.concurrency), "32"),
            ("--codes", str(args.codes), "1000"),
            ("--duration", f"{args.duration:g}", "60"),
            ("--warmup", str(args.warmup), "200"),
        )
        if value != default
    ) + (" --client python" if args.client == "python" else "") + (" --no-quota" if args.no_quota else "") + (f" --counter --slots {args.slots}" if args.counter else "")


if __name__ == "__main__":
    sys.exit(main())
