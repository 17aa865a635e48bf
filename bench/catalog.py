"""Catalog benchmark: the gateway against plain strawberry and the HTTP floor.

    python bench/catalog.py [--duration 20] [--concurrency 32] [--database sqlite|postgres]
                            [--client wrk|python] [--during-sale [--orders-per-second 100]]

The load comes from wrk (`apt-get install -y wrk`; bench/wrk.py), whose one thread uses a few
percent of a core here, so the figures are the servers'; `--client python` uses bench/load.py.

Prepares its own gateway database (demo data plus products to fill a 20-product page),
then serves the same catalog answer from four servers in turn, one uvicorn worker each:
the gateway with QUANYI_RESPONSE_CACHE=0 and =1, Starlette returning the gateway's bytes
from memory (the HTTP floor), and a plain strawberry schema over in-memory objects.
Prints the table and writes its section of docs/benchmarks.md ("Catalog", or "Catalog on
PostgreSQL" with --database postgres). With --during-sale it measures the cached page while a
SKU on it sells instead (bench/catalog_sale.py).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson
from servers import BENCH, HOST, ROOT, Server, fetch, serving

# The project's modules from this working tree, whatever the virtualenv's install points at.
sys.path.insert(1, str(ROOT))

import catalog_doc
import catalog_sale
import wrk
from catalog_doc import Run
from database import bench_database
from load import Plan, http_post
from load import run as drive
from report import FLOOR, GATEWAY_OFF, GATEWAY_ON, STRAWBERRY, Figures, text_table

CATALOG = """
query Catalog {
  products(channel: "web", first: 20) {
    edges {
      node {
        id name slug
        brand { name }
        skus { id code kind price { amount currency } stock { available reserved presale } }
      }
    }
  }
}
"""
BODY = orjson.dumps({"query": CATALOG, "operationName": "Catalog"})


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per server")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per server")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent keep-alive clients")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    parser.add_argument(
        "--client", choices=("wrk", "python"), default="wrk",
        help="load generator: wrk (compiled, the default; apt-get install wrk) or bench/load.py",
    )
    parser.add_argument("--during-sale", action="store_true",
                        help="the cached page while a SKU on it sells (bench/catalog_sale.py; bench/load.py reads it)")
    parser.add_argument("--orders-per-second", type=float, default=100.0, help="with --during-sale")
    return parser.parse_args(argv)


def check_answer(body: bytes) -> tuple[int, int]:
    """Products and SKUs in a catalog answer that has data and no errors."""
    answer = orjson.loads(body)
    if answer.get("errors") or not answer.get("data"):
        raise SystemExit(f"the gateway answered with errors: {body[:500]!r}")
    edges = answer["data"]["products"]["edges"]
    return len(edges), sum(len(edge["node"]["skus"]) for edge in edges)


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    if args.client == "wrk" and not wrk.available():
        raise SystemExit(f"{wrk.MISSING}; or measure with --client python (bench/load.py)")
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(
            f"note: load average {load_before:.2f}: other work on this machine will move the figures"
        )
    if args.during_sale:
        with tempfile.TemporaryDirectory(prefix="quanyi-bench-") as scratch:
            print(f"preparing the gateway's {args.database} database …", flush=True)
            with bench_database(args.database, Path(scratch)) as env:
                return catalog_sale.run(args, {**env, "QUANYI_RATE_LIMITS": "0"}, Path(scratch), BODY, load_before)
    figures: list[Figures] = []
    spawn = multiprocessing.get_context("spawn")
    with (
        tempfile.TemporaryDirectory(prefix="quanyi-bench-") as scratch,
        ProcessPoolExecutor(max_workers=1, mp_context=spawn) as client,
    ):
        folder = Path(scratch)
        log = folder / "servers.log"

        def measure(server: Server, expected: bytes) -> Figures:
            print(f"measuring {server.name} …", flush=True)
            if args.client == "wrk":
                return wrk.measure(
                    server, BODY, expected, concurrency=args.concurrency, warmup=args.warmup,
                    duration=args.duration,
                )
            plan = Plan(
                HOST,
                server.port,
                http_post(HOST, server.port, "/graphql", BODY),
                wrk.expected_data(expected),
                args.concurrency,
                args.warmup,
                args.duration,
                server.pid,
            )
            return Figures.of(server.name, client.submit(drive, plan).result())

        answer = b""
        print(f"preparing the gateway's {args.database} database …", flush=True)
        with bench_database(args.database, folder) as env:
            for name, cache in ((GATEWAY_OFF, "0"), (GATEWAY_ON, "1")):
                # One load generator is one address: budgets would throttle it, and this measures speed.
                gateway_env = {**env, "QUANYI_RESPONSE_CACHE": cache, "QUANYI_RATE_LIMITS": "0"}
                with serving(
                    name,
                    "gateway:create_app",
                    gateway_env,
                    app_dir=ROOT,
                    cwd=folder,
                    probe=BODY,
                    log=log,
                ) as server:
                    status, body = fetch(server.port, BODY)
                    if status != 200:
                        raise SystemExit(f"{name} answered {status}: {body[:500]!r}")
                    products, skus = check_answer(body)
                    if answer and wrk.expected_data(body) != wrk.expected_data(answer):
                        raise SystemExit(f"{name} answers differently from {GATEWAY_OFF}")
                    answer = answer or body
                    figures.append(measure(server, answer))
        (folder / "answer.json").write_bytes(answer)
        baseline_env = {"QUANYI_BENCH_ANSWER": str(folder / "answer.json")}
        for name, app in ((FLOOR, "baselines:floor_app"), (STRAWBERRY, "baselines:strawberry_app")):
            with serving(
                name, app, baseline_env, app_dir=BENCH, cwd=folder, probe=BODY, log=log
            ) as server:
                figures.append(measure(server, answer))

    shape = f"{products} products, {skus} SKUs"
    print(
        f"\ncatalog answer: {shape}, {len(answer):,} bytes; {args.concurrency} clients, "
        f"{args.duration:g} s each after {args.warmup:g} s warm-up\n"
    )
    print(text_table(figures))
    failed = sum(f.failed for f in figures)
    if failed:
        print(
            f"\n{failed} answers were not 200 or their data differed from the gateway's: figures not written"
        )
        return 1
    if not args.no_doc:
        command = "python bench/catalog.py" + "".join(
            f" {flag} {value}"
            for flag, value, default in (
                ("--duration", f"{args.duration:g}", "20"),
                ("--warmup", f"{args.warmup:g}", "3"),
                ("--concurrency", str(args.concurrency), "32"),
                ("--database", args.database, "sqlite"),
                ("--client", args.client, "wrk"),
            )
            if value != default
        )
        measured = Run(
            figures,
            command=command,
            database=args.database,
            answer_bytes=len(answer),
            shape=shape,
            concurrency=args.concurrency,
            warmup=args.warmup,
            duration=args.duration,
            load_before=load_before,
            client=args.client,
        )
        catalog_doc.update(args.doc, measured)
        print(f'\nwrote the section "{measured.heading}" of {args.doc}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
