"""Fulfilment benchmark: paid top-up orders delivered per second, beside the supplier alone.

    python bench/fulfilment.py [--orders 400] [--concurrency 16] [--latency-ms 50] [--workers 1 2]

Creates a PostgreSQL database for the run on 127.0.0.1 (migrated, the demo data) and starts a
simulated supplier (`quanyi supplier-sim`, sync mode, --latency-ms per answer). Then one round
per --workers count: a gateway of that many uvicorn worker processes, each with its job
worker (--concurrency jobs in flight in all); --orders direct top-up orders placed, then paid,
timed from the first payment to the last DELIVERED, with the CPU of the gateway processes and
of the database's PostgreSQL backends. The baseline, in the same run: the same number of
top-ups sent straight to a second simulator with the HTTP adapter (aiohttp) at the same
concurrency. Prints them all, and writes the "Fulfilment" section of docs/benchmarks.md
(unless --no-doc). BENCH_FOLDER keeps the logs; BENCH_PYSPY profiles the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
from database import bench_database
from database import PG_ADMIN
from servers import HOST, ROOT, free_port, project_env, serving, stop, tree_cpu

sys.path.insert(1, str(ROOT))

from sqlalchemy import func, select, update
from tables import markdown_table, text_table

from config import Settings
from domain.access import Role
from domain.money import Money
from domain.orders import OrderStatus
from domain.slots import DEFAULT_SLOTS
from models import Order, Sku, Supplier
from schema.relay import encode_id
from services.access.keys import issue_key
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.fulfilment.supplier_registry import seal_secret
from services.inventory.slots import rebalance
from suppliers.base import TopUp
from suppliers.http import HttpSupplier

SECRET = "bench-supplier-secret"
SKU = "GS-60"
PROBE = b'{"query":"{ __typename }"}'
PLACE = "mutation P($i: PlaceOrderInput!) { placeOrder(input: $i) { order { id } userErrors { code } } }"
PAY = "mutation P($id: ID!, $r: String!) { payOrder(orderId: $id, paymentReference: $r) { userErrors { code } } }"


@contextlib.contextmanager
def supplier_sim(latency_ms: int, log: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", "from gateway import main; main()", "supplier-sim", "--port", str(port),
             "--mode", "sync", "--latency-ms", str(latency_ms)],
            env=project_env({**env, "QUANYI_SUPPLIER_SIM_SECRET": SECRET}), cwd=ROOT, stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/control").status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        stop(process)


async def prepare(env: dict[str, str], supplier_url: str, orders: int) -> str:
    settings = Settings.from_env(env)
    db = Database.connect(settings)
    box = SecretBox(settings.secret_key)
    try:
        async with db.sessions() as session, session.begin():
            admin = await issue_key(session, role=Role.ADMIN, channel=None, name="bench")
            await session.execute(update(Supplier).values(
                adapter="http", base_url=supplier_url, secret_ciphertext=seal_secret(box, "x", SECRET), timeout_seconds=5.0))
            for row in await session.scalars(select(Supplier)):
                row.secret_ciphertext = seal_secret(box, row.code, SECRET)
            sku_id = await session.scalar(select(Sku.id).where(Sku.code == SKU))
            assert sku_id is not None and await rebalance(session, sku_id, orders * 2, DEFAULT_SLOTS) is None
        return admin.plaintext
    finally:
        await db.dispose()


async def place_orders(url: str, sku_gid: str, orders: int, concurrency: int, tag: str) -> list[str]:
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        async def one(index: int) -> str:
            async with semaphore:
                answer = (await http.post("/graphql", json={"query": PLACE, "variables": {"i": {
                    "channel": "web", "idempotencyKey": f"bench-order-key-{tag}-{index}", "lines": [{"skuId": sku_gid, "quantity": 1}],
                    "buyer": {"phone": "13800138000", "rechargeAccount": f"acct-{index}"}}}})).json()
                return str(answer["data"]["placeOrder"]["order"]["id"])

        return await asyncio.gather(*(one(i) for i in range(orders)))


async def pay_and_wait(url: str, env: dict[str, str], admin: str, ids: list[str], concurrency: int) -> tuple[float, float]:
    """Pays every order (`concurrency` at once) and waits for the last DELIVERED: the seconds
    from the first payment, and this process's own CPU meanwhile (the load it generates).
    The payments go through aiohttp, whose requests cost a tenth of httpx's CPU here, so the
    load generator is not what limits the rate on a machine of two cores."""
    db = Database.connect(Settings.from_env(env))
    semaphore = asyncio.Semaphore(concurrency)
    try:
        async with aiohttp.ClientSession(headers={"authorization": f"Bearer {admin}"}) as http:
            async def pay(order_id: str) -> None:
                async with semaphore:
                    body = {"query": PAY, "variables": {"id": order_id, "r": f"p-{order_id}"}}
                    async with http.post(f"{url}/graphql", json=body) as answer:
                        assert answer.status == 200, await answer.text()
                        errors = (await answer.json()).get("errors")
                        assert not errors, errors

            delivered = select(func.count()).select_from(Order).where(Order.status == OrderStatus.DELIVERED)
            async with db.sessions() as session:
                before = await session.scalar(delivered) or 0  # earlier rounds' orders
            started, own = time.perf_counter(), time.process_time()
            await asyncio.gather(*(pay(order_id) for order_id in ids))

        while True:
            async with db.sessions() as session:
                done = (await session.scalar(delivered) or 0) - before
            if done == len(ids):
                return time.perf_counter() - started, time.process_time() - own
            await asyncio.sleep(0.05)
    finally:
        await db.dispose()


async def baseline(supplier_url: str, orders: int, concurrency: int) -> float:
    adapter = HttpSupplier("baseline", supplier_url, SECRET, timeout_seconds=10)
    semaphore = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with semaphore:
            await adapter.submit(TopUp(f"base-{index}", SKU, f"acct-{index}", 1, Money.of("6.00")))

    try:
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(orders)))
        return time.perf_counter() - started
    finally:
        await adapter.close()


@dataclass(frozen=True)
class Round:
    """One timed pass: `workers` gateway processes take paid orders to DELIVERED."""

    workers: int
    seconds: float
    gateway_cpu: float  # every gateway process, uvicorn's supervisor included
    database_cpu: float | None  # the PostgreSQL backends of the benchmark's database
    load: float  # the machine's 1-minute load average when the round started
    placing_cpu: float  # the gateway processes while the orders were placed (not timed)
    placing_database_cpu: float | None
    client_cpu: float  # this process, paying and polling, while timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="gateway processes, one round each in this run (e.g. --workers 1 2)")
    parser.add_argument("--no-doc", action="store_true", help="print the figures only")
    args = parser.parse_args()
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(os.environ.get("BENCH_FOLDER") or folder_name)
        with bench_database("postgresql", folder, catalog=False) as env, \
                supplier_sim(args.latency_ms, folder / "sim.log") as sim_url, \
                supplier_sim(args.latency_ms, folder / "sim-baseline.log") as baseline_url:
            admin = asyncio.run(prepare(env, sim_url, args.orders * (len(args.workers) + 1)))
            gid = asyncio.run(sku_gid(env))
            for number, workers in enumerate(args.workers):
                rounds.append(timed_round(args, env, folder, admin, gid, workers, f"r{number}"))
            direct_seconds = asyncio.run(baseline(baseline_url, args.orders, args.concurrency))
    header = ("path", "top-ups", "concurrency", "seconds", "per second", "× supplier alone")
    rows = [
        (f"gateway, {r.workers} process{'es' if r.workers > 1 else ''}: paid -> DELIVERED (PostgreSQL)",
         str(args.orders), str(args.concurrency), f"{r.seconds:.2f}", f"{args.orders / r.seconds:.0f}",
         f"{direct_seconds / r.seconds:.2f}")
        for r in rounds
    ]
    rows.append(("baseline: submit through the adapter alone", str(args.orders), str(args.concurrency),
                 f"{direct_seconds:.2f}", f"{args.orders / direct_seconds:.0f}", "1.00"))
    print(text_table(header, rows))
    for r in rounds:
        database = (f", PostgreSQL backends {1000 * r.database_cpu / args.orders:.1f} ms an order"
                    if r.database_cpu is not None else "")
        print(f"{r.workers} gateway process(es), load average {r.load:.2f} at the start: gateway CPU "
              f"{1000 * r.gateway_cpu / args.orders:.1f} ms an order{database}; the paying client "
              f"{1000 * r.client_cpu / args.orders:.2f} ms an order")
        placing = (f", PostgreSQL backends {1000 * r.placing_database_cpu / args.orders:.1f} ms"
                   if r.placing_database_cpu is not None else "")
        print(f"  placing them (not timed): gateway CPU {1000 * r.placing_cpu / args.orders:.1f} ms an order{placing}")
    if not args.no_doc:
        write_doc(markdown_table(header, rows), args, rounds)


def timed_round(args: argparse.Namespace, env: dict[str, str], folder: Path, admin: str, gid: str, workers: int,
                tag: str) -> Round:
    """Places --orders orders through a gateway of `workers` processes, then times their
    payment to the last DELIVERED. The job concurrency is divided between the processes, so
    every round has --concurrency jobs (supplier calls) in flight at most, as the baseline."""
    per_process = max(1, -(-args.concurrency // workers))
    gateway_env = {**env, "QUANYI_WORKER": "1", "QUANYI_WORKER_CONCURRENCY": str(per_process),
                   "QUANYI_WORKER_POLL_SECONDS": "0.5", "QUANYI_RESPONSE_CACHE": "0"}
    with serving("gateway", "gateway:create_app", gateway_env, app_dir=ROOT, cwd=folder, probe=PROBE,
                 log=folder / "gateway.log", workers=workers) as server:
        url = f"http://{HOST}:{server.port}"
        database = env["QUANYI_DATABASE_URL"].rpartition("/")[2]
        place_before, place_db_before = tree_cpu(server.pid) or 0.0, asyncio.run(backend_cpu(database))
        ids = asyncio.run(place_orders(url, gid, args.orders, args.concurrency, tag))
        load = os.getloadavg()[0]
        cpu_before, db_before = tree_cpu(server.pid) or 0.0, asyncio.run(backend_cpu(database))
        with profiled(server.pid):
            seconds, client_cpu = asyncio.run(pay_and_wait(url, env, admin, ids, args.concurrency))
        cpu_after, db_after = tree_cpu(server.pid) or 0.0, asyncio.run(backend_cpu(database))
    return Round(workers, seconds, cpu_after - cpu_before, _spent(db_before, db_after), load,
                 cpu_before - place_before, _spent(place_db_before, db_before), client_cpu)


def _spent(before: dict[int, float], after: dict[int, float]) -> float | None:
    """CPU the backends spent between two readings (one that connected meanwhile from zero)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()) if after else None


async def sku_gid(env: dict[str, str]) -> str:
    db = Database.connect(Settings.from_env(env))
    try:
        async with db.sessions() as session:
            pk = await session.scalar(select(Sku.id).where(Sku.code == SKU))
    finally:
        await db.dispose()
    return str(encode_id("Sku", int(pk or 0)))


async def backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to `database` (Linux /proc; the
    server on this machine). Pools keep their connections, so two readings bracket a round."""
    import asyncpg

    connection = await asyncpg.connect(**PG_ADMIN)
    try:
        pids = [row[0] for row in await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1", database)]
    finally:
        await connection.close()
    found = {pid: tree_cpu(pid) for pid in pids}
    return {pid: cpu for pid, cpu in found.items() if cpu is not None}


@contextlib.contextmanager
def profiled(pid: int) -> Iterator[None]:
    """With BENCH_PYSPY=<file>, py-spy (installed by hand, not a dependency) records the
    gateway's stacks while timed, in its raw format (BENCH_PYSPY_FORMAT to change it)."""
    target = os.environ.get("BENCH_PYSPY")
    if not target:
        yield
        return
    spy = subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid), "--subprocesses", "-o", target,
         "-f", os.environ.get("BENCH_PYSPY_FORMAT", "raw"), "-r", "200"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait()


def write_doc(table: str, args: argparse.Namespace, rounds: list[Round]) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text()
    workers = " ".join(str(r.workers) for r in rounds)
    cpu = "\n".join(
        f"- {r.workers} gateway process{'es' if r.workers > 1 else ''} (load average {r.load:.2f} at the start): "
        f"gateway CPU {1000 * r.gateway_cpu / args.orders:.1f} ms an order"
        + (f", PostgreSQL backends {1000 * r.database_cpu / args.orders:.1f} ms an order"
           if r.database_cpu is not None else "")
        + f", the paying client {1000 * r.client_cpu / args.orders:.2f} ms an order"
        + f"; placing the orders before (not timed): gateway {1000 * r.placing_cpu / args.orders:.1f} ms"
        + (f", PostgreSQL backends {1000 * r.placing_database_cpu / args.orders:.1f} ms"
           if r.placing_database_cpu is not None else "")
        for r in rounds
    )
    section = (
        "## Fulfilment\n\n"
        f"`python bench/fulfilment.py --orders {args.orders} --concurrency {args.concurrency} "
        f"--latency-ms {args.latency_ms} --workers {workers}`: {args.orders} paid direct top-up orders a round, "
        f"the simulated supplier answering each submission after {args.latency_ms} ms (sync mode), on "
        "PostgreSQL. Each round serves them with that many gateway processes (uvicorn workers, each with its "
        f"job worker; {args.concurrency} jobs in flight in all, divided between the processes) and is timed "
        "from the first payment to the last order DELIVERED. The baseline sends the same number of top-ups "
        "straight to a second simulator with the HTTP adapter at the same concurrency: the supplier's latency "
        "alone. Written by the benchmark; measured on "
        f"{os.cpu_count()} cores shared with other work.\n\n"
        f"{table}\n\n"
        "CPU while timed, per order, payment included (every gateway process; the PostgreSQL backends "
        "connected to the benchmark's database, from /proc):\n\n"
        f"{cpu}\n"
    )
    pattern = re.compile(r"## Fulfilment\n.*?(?=\n## |\Z)", re.DOTALL)
    text = pattern.sub(section.rstrip("\n") + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    main()
