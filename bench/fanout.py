"""Fan-out benchmark: stockChanged to N WebSocket subscribers of one gateway process, beside a
bare `websockets` server broadcasting the same message to as many clients.

    python bench/fanout.py [--subscribers 2000] [--events 20] [--interval 0.5]
                           [--client-processes 4] [--database sqlite|postgres] [--redis URL]

Prepares its own gateway database (migrated, demo data), starts the gateway (one uvicorn
worker), opens the subscribers from several client processes (graphql-transport-ws,
`stockChanged(channel: "web", skuIds: [one SKU])`), and changes that SKU's quota on the web
channel `--events` times, `--interval` seconds apart, through `setChannelQuota`. Each message
carries the change's `at`, stamped by the server: a subscriber's latency is the time from it
to the message's arrival. Then the baseline (`bench/fanout_baseline.py`) broadcasts a message
the gateway delivered, stamped with its own `at`, to as many subscribers, as often. Prints the
table and writes the "Fan-out" section of docs/benchmarks.md. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import orjson
from servers import BENCH, HOST, ROOT, free_port, project_env, serving, stop
from websockets.sync.client import connect as ws_connect

sys.path.insert(1, str(ROOT))

import fanout_clients
import fanout_doc
from database import bench_database
from fanout_clients import ClientPlan
from fanout_doc import BASELINE, GATEWAY, FanoutRun, Figures
from load import server_cpu

SUBPROTOCOL = "graphql-transport-ws"
SUBSCRIPTION = """
subscription Stock($channel: String!, $skuIds: [ID!]) {
  stockChanged(channel: $channel, skuIds: $skuIds) { skuId channel available reserved at }
}
"""
SET_QUOTA = """
mutation Quota($input: SetChannelQuotaInput!) { setChannelQuota(input: $input) { userErrors { code } } }
"""
SKUS = """
{ products(channel: "web", first: 50) { edges { node { skus { id kind stock { available } } } } } }
"""
PROBE = orjson.dumps({"query": "{ channels { code } }"})


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20, help="measured changes")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between changes")
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--redis", metavar="URL", help="run the gateway on the Redis broker")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    return parser.parse_args(argv)


def rss(pid: int) -> int:
    """Resident memory of a process in bytes, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class Pool:
    """The client processes, each holding its share of the subscribers."""

    pipes: list[Connection]

    def ask(self, command: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        for pipe in self.pipes:
            pipe.send(command)
        return [self.answer(pipe, timeout) for pipe in self.pipes]

    @staticmethod
    def answer(pipe: Connection, timeout: float) -> dict[str, Any]:
        if not pipe.poll(timeout):
            raise RuntimeError(f"a client process did not answer within {timeout:.0f} s")
        return pipe.recv()


@contextlib.contextmanager
def subscribers(plan: ClientPlan, total: int, processes: int) -> Iterator[tuple[Pool, list[dict[str, Any]]]]:
    """`total` subscribers across `processes` client processes, connected and subscribed."""
    spawn = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    workers: list[Any] = []
    try:
        for index in range(processes):
            count = total // processes + (1 if index < total % processes else 0)
            mine, theirs = spawn.Pipe()
            worker = spawn.Process(target=fanout_clients.run, args=(theirs, replace(plan, count=count)), daemon=True)
            worker.start()
            pipes.append(mine)
            workers.append(worker)
        pool = Pool(pipes)
        yield pool, [pool.answer(pipe, 120.0) for pipe in pipes]
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send("close")
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()


def measure(
    name: str, pid: int, port: int, trigger: Callable[[int], None], args: argparse.Namespace, variables: dict[str, Any]
) -> Figures:
    init = orjson.dumps({"type": "connection_init", "payload": {}})
    subscribe = orjson.dumps({"id": "s", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": variables}})
    plan = ClientPlan(HOST, port, "/graphql", SUBPROTOCOL, init, subscribe, count=0)
    idle = rss(pid)
    print(f"{name}: opening {args.subscribers} subscribers from {args.client_processes} processes …", flush=True)
    started = time.monotonic()
    with subscribers(plan, args.subscribers, args.client_processes) as (pool, opened):
        connect_seconds = time.monotonic() - started
        connected = sum(o["connected"] for o in opened)
        failures = [f for o in opened for f in o["first_failure"]]
        time.sleep(1.0)
        subscribed = rss(pid)
        # Warm-up: a subscription is live a moment after `subscribe`; change until all have one.
        for turn in range(30):
            trigger(turn)
            time.sleep(max(args.interval, 0.5))
            if sum(c["reached"] for c in pool.ask("count")) >= connected:
                break
        else:
            print(f"{name}: not every subscriber received the warm-up changes", flush=True)
        time.sleep(1.0)
        pool.ask("reset")
        cpu_before = server_cpu(pid)
        start = time.monotonic()
        for turn in range(args.events):
            time.sleep(max(0.0, start + turn * args.interval - time.monotonic()))
            trigger(100 + turn)
        expected = connected * args.events
        settle = time.monotonic() + 15.0
        while time.monotonic() < settle:
            time.sleep(0.25)
            if sum(c["deliveries"] for c in pool.ask("count")) >= expected:
                break
        cpu_after = server_cpu(pid)
        reports = pool.ask("report", timeout=60.0)
        after = rss(pid)
    latencies = sorted(latency for report in reports for latency in report["latencies"])
    sample = next((r["sample"] for r in reports if r["sample"]), b"")
    return Figures(
        server=name,
        subscribers=connected,
        failed=args.subscribers - connected,
        first_failure=failures[0] if failures else None,
        expected=expected,
        delivered=sum(r["deliveries"] for r in reports),
        latencies=latencies,
        rss_idle=idle,
        rss_subscribed=subscribed,
        rss_after=after,
        cpu_per_event=(cpu_after - cpu_before) / args.events if cpu_before is not None and cpu_after is not None else None,
        message=sample,
        connect_seconds=connect_seconds,
    )


def admin_key(env: dict[str, str]) -> str:
    """An operator key on the benchmark's database, for setChannelQuota."""
    from config import Settings  # the gateway's own settings, read from the same environment
    from domain.access import Role
    from services.access.keys import issue_key
    from services.core.database import Database

    async def issue() -> str:
        db = Database.connect(Settings.from_env(env))
        try:
            async with db.sessions() as session, session.begin():
                return (await issue_key(session, role=Role.ADMIN, channel=None, name="fan-out benchmark")).plaintext
        finally:
            await db.dispose()

    return asyncio.run(issue())


def hot_sku(port: int) -> tuple[str, int]:
    """The web channel's code-backed SKU with the most stock, and that stock."""
    answer = httpx.post(f"http://{HOST}:{port}/graphql", json={"query": SKUS}, timeout=30).json()
    skus = [s for e in answer["data"]["products"]["edges"] for s in e["node"]["skus"] if s["kind"] == "CARD_CODE"]
    best = max(skus, key=lambda s: s["stock"]["available"])
    return best["id"], best["stock"]["available"]


def gateway_run(args: argparse.Namespace, folder: Path) -> tuple[Figures, str]:
    log = folder / "gateway.log"
    print(f"preparing the gateway's {args.database} database …", flush=True)
    with bench_database(args.database, folder, catalog=False) as env:
        key = admin_key(env)
        # Every subscriber comes from this machine's one address: no cap of sockets per address.
        env = {**env, "QUANYI_WS_CONNECTIONS_PER_IP": "0"}
        if args.redis:
            env = {**env, "QUANYI_REDIS_URL": args.redis, "QUANYI_BROKER_PREFIX": f"quanyi-bench-{uuid.uuid4().hex[:8]}:"}
        with (
            serving(GATEWAY, "gateway:create_app", env, app_dir=ROOT, cwd=folder, probe=PROBE, log=log) as server,
            httpx.Client(base_url=f"http://{HOST}:{server.port}", timeout=30) as http,
        ):
            sku, stock = hot_sku(server.port)
            if stock < 3:
                raise SystemExit(f"the web channel's best-stocked SKU has {stock} codes: too few to change")

            def trigger(turn: int) -> None:
                # Alternate between two quotas under the pool: `available` moves with each change.
                quota = stock - 1 - turn % 2
                answer = http.post(
                    "/graphql",
                    json={"query": SET_QUOTA, "variables": {"input": {"channel": "web", "skuId": sku, "quota": quota}}},
                    headers={"authorization": f"Bearer {key}"},
                ).json()
                if answer.get("errors") or answer["data"]["setChannelQuota"]["userErrors"]:
                    raise SystemExit(f"setChannelQuota failed: {answer}")

            figures = measure(GATEWAY, server.pid, server.port, trigger, args, {"channel": "web", "skuIds": [sku]})
    if "Traceback" in log.read_text(errors="replace"):
        print(f"note: the gateway logged errors:\n{log.read_text(errors='replace')[-3000:]}", flush=True)
    return figures, sku


def baseline_run(args: argparse.Namespace, folder: Path, sku: str, template: bytes) -> Figures:
    (folder / "template.json").write_bytes(template)
    port = free_port()
    with open(folder / "baseline.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(BENCH / "fanout_baseline.py"), "--port", str(port), "--template", str(folder / "template.json")],
            env=project_env({}), cwd=folder, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                control = ws_connect(f"ws://{HOST}:{port}/graphql", subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the baseline did not start: {(folder / 'baseline.log').read_text()}") from None
                time.sleep(0.2)
        with control:

            def trigger(turn: int) -> None:
                control.send('{"type":"publish"}')
                control.recv(timeout=30)

            return measure(BASELINE, process.pid, port, trigger, args, {"channel": "web", "skuIds": [sku]})
    finally:
        stop(process)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    fanout_clients.raise_fd_limit()  # the servers inherit it
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"note: load average {load_before:.2f}: other work on this machine will move the figures")
    with tempfile.TemporaryDirectory(prefix="quanyi-fanout-") as scratch:
        folder = Path(scratch)
        gateway, sku = gateway_run(args, folder)
        if not gateway.message:
            raise SystemExit(f"no subscriber received a change from the gateway: {gateway}")
        baseline = baseline_run(args, folder, sku, gateway.message)
    run = FanoutRun(
        figures=[gateway, baseline],
        command=fanout_doc.command(args),
        events=args.events,
        interval=args.interval,
        client_processes=args.client_processes,
        database=args.database,
        redis=bool(args.redis),
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )
    print()
    print(fanout_doc.text_table(run))
    if gateway.failed or baseline.failed:
        print(f"\nsubscribers that could not connect: {gateway.first_failure or baseline.first_failure}")
    if not args.no_doc:
        fanout_doc.update(args.doc, run)
        print(f'\nwrote the section "{fanout_doc.HEADING}" of {args.doc}')
    return 0


if __name__ == "__main__":
    sys.exit(main())
