"""Abuse benchmark: does one caller's heaviest allowed query hurt everybody else?

    python bench/abuse.py [--duration 15] [--database sqlite|postgres] [--heavy-clients 4]

One gateway worker on its own database (demo data plus a full catalog page). A trivial query
(`{ channels { code } }`) is sent one at a time by one client, and its latency measured:
1. alone (the baseline, measured in the same run);
2. while four clients, each in a process of its own, send the heaviest query the cost limit
   lets through, over and over, with budgets off (QUANYI_RATE_LIMITS=0): every one of them runs;
3. the same with budgets on (the default): each heavy client draws on its own address's bucket
   (X-Forwarded-For from a trusted proxy), so it is throttled to its restore rate;
and, for reference, how the amplification query of the issue fares (refused before execution).

Aim: the trivial query's p99 under load at most 3x its p99 alone. Prints the table and the
heavy clients' outcomes (answered, throttled), and each process's CPU share.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
from servers import HOST, ROOT, project_env, serving

sys.path.insert(1, str(ROOT))

from database import _quanyi, bench_database

TRIVIAL = orjson.dumps({"query": "{ channels { code } }"})
# The heaviest reads the cost limit (1000) lets through: a full page of everything, and a page
# whose SKUs name their product's SKUs again. Both ask for the whole catalog of the bench.
HEAVY = {
    "wide page (802 points)": """{ products(channel: "web", first: 100) { edges { node { id name slug description
        brand { code name } category { code name }
        skus { id code name kind price { amount currency } faceValue { amount } stock { available reserved presale } } } }
        pageInfo { hasNextPage endCursor } } }""",
    "nested skus (902 points)": """{ products(channel: "web", first: 25) { edges { node { name
        skus { code price { amount } product { name skus { code name stock { available } } } } } } } }""",
}
AMPLIFIER = "{ " + " ".join(
    f'a{i}: products(channel: "web", first: 100) {{ edges {{ node {{ id name slug description skus {{ id code name kind '
    f'product {{ id name slug skus {{ id code name kind faceValue {{ amount }} }} }} }} }} }} pageInfo {{ hasNextPage endCursor }} }}'
    for i in range(30)
) + " }"


@dataclass(frozen=True)
class Latencies:
    label: str
    samples: list[float]
    cpu_share: float  # of the server process, over the window

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--heavy-clients", type=int, default=4)
    return parser.parse_args(argv)


def hammer(port: int, body: bytes, address: str, until: float) -> tuple[int, int, int]:
    """A heavy client: sends `body` back to back until `until`. Answered, throttled, other."""
    answered = throttled = other = 0
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=60) as client:
        while time.time() < until:
            response = client.post("/graphql", content=body, headers={
                "content-type": "application/json", "x-forwarded-for": address,
            })
            if response.status_code == 200 and b'"errors"' not in response.content:
                answered += 1
            elif response.status_code == 429:
                throttled += 1
                time.sleep(min(1.0, float(response.headers.get("retry-after", "1"))))
            else:
                other += 1
    return answered, throttled, other


def probe(port: int, duration: float, key: str) -> list[float]:
    """The trivial client: one request at a time, each one's latency in seconds. It is a
    storefront with a budget large enough never to be throttled: what it measures is the
    gateway's latency, not its own budget."""
    samples: list[float] = []
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=60) as client:
        end = time.monotonic() + duration
        while time.monotonic() < end:
            started = time.perf_counter()
            response = client.post("/graphql", content=TRIVIAL, headers={
                "content-type": "application/json", "x-forwarded-for": "192.0.2.1", "authorization": f"Bearer {key}",
            })
            samples.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"the trivial query failed: {response.status_code} {response.content[:300]!r}")
    return samples


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def storefront_key(env: dict[str, str], folder: Path) -> str:
    made = subprocess.run([*_quanyi(), "keys", "create", "--role", "STOREFRONT", "--channel", "web", "--name", "prober"],
                          env=project_env(env), cwd=folder, capture_output=True, text=True, check=True)
    return made.stdout.strip().splitlines()[-1]


def measure(label: str, port: int, pid: int, duration: float, pool: ProcessPoolExecutor, heavy: bytes | None,
            clients: int, key: str) -> tuple[Latencies, tuple[int, int, int]]:
    until = time.time() + duration + 2
    futures = [pool.submit(hammer, port, heavy, f"198.51.100.{i + 1}", until) for i in range(clients)] if heavy else []
    time.sleep(1.0 if heavy else 0)  # the heavy clients get going first
    before, started = cpu_seconds(pid), time.monotonic()
    samples = probe(port, duration, key)
    share = (cpu_seconds(pid) - before) / (time.monotonic() - started)
    totals = [f.result() for f in futures]
    outcome = tuple(sum(t[i] for t in totals) for i in range(3))
    return Latencies(label, samples, share), outcome  # type: ignore[return-value]


def refusal_work(rounds: int = 30) -> tuple[float, float, float]:
    """Server work to refuse the amplification query, in this process, median milliseconds:
    reading the floor under its cost from its tokens (what the gateway does with a large new
    document before parsing it, and all it does to refuse this one); parsing and costing it in
    full, which the refusal skips; and validating it, which even the full count skips. Each
    round's document differs (its aliases are renamed), as an attacker's would, so no cache
    helps."""
    from graphql import get_operation_ast, parse, specified_rules, validate

    from resolvers import build_schema
    from transport.admission import Admission
    from transport.cost_floor import CostFloor

    schema = build_schema()._schema
    admission = Admission(schema, None)
    floor = CostFloor(admission.cost, max_tokens=2000)
    floors, parsing, validating = [], [], []
    for round_ in range(rounds):
        text = AMPLIFIER.replace(" a", f" r{round_}x")
        started = time.perf_counter()
        assert floor.requested(text) > admission.max_cost
        floors.append(time.perf_counter() - started)
        started = time.perf_counter()
        document = parse(text, max_tokens=2000)
        operation = get_operation_ast(document)
        assert operation is not None and admission.requested(text, document, operation, None) > admission.max_cost
        parsing.append(time.perf_counter() - started)
        started = time.perf_counter()
        validate(schema, document, specified_rules)
        validating.append(time.perf_counter() - started)
    return tuple(statistics.median(samples) * 1000 for samples in (floors, parsing, validating))  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    floor, parsing, validating = refusal_work()
    print(f"refusing the amplification query: {floor:.1f} ms of work (its cost floor read from its tokens); "
          f"parsing and costing it in full would take {parsing:.1f} ms and validating it {validating:.1f} ms more, "
          "which the refusal skips")
    rows: list[tuple[Latencies, tuple[int, int, int] | None]] = []
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="quanyi-abuse-") as scratch, \
            ProcessPoolExecutor(max_workers=args.heavy_clients, mp_context=spawn) as pool:
        folder = Path(scratch)
        with bench_database(args.database, folder) as env:
            key = storefront_key(env, folder)
            for budgets in ("0", "1"):
                gateway_env = {**env, "QUANYI_RATE_LIMITS": budgets, "QUANYI_TRUSTED_PROXIES": "127.0.0.1",
                               "QUANYI_RESPONSE_CACHE": "0", "QUANYI_BUDGETS": "storefront=1000000/100000"}
                with serving(f"gateway, budgets {'on' if budgets == '1' else 'off'}", "gateway:create_app",
                             gateway_env, app_dir=ROOT, cwd=folder, probe=TRIVIAL, log=folder / "server.log") as server:
                    with httpx.Client(base_url=f"http://{HOST}:{server.port}", timeout=60) as client:
                        refused = client.post("/graphql", json={"query": AMPLIFIER},
                                              headers={"x-forwarded-for": "203.0.113.9"})
                        code = refused.json()["errors"][0]["extensions"]["code"]
                        print(f"amplification query ({len(AMPLIFIER):,} bytes): {refused.status_code} {code}, "
                              f"{refused.elapsed.total_seconds() * 1000:.1f} ms round trip")
                    if budgets == "0":
                        alone, _ = measure("alone", server.port, server.pid, args.duration, pool, None, 0, key)
                        rows.append((alone, None))
                    for name, query in HEAVY.items():
                        body = orjson.dumps({"query": query})
                        label = f"with {args.heavy_clients} × {name}, budgets {'on' if budgets == '1' else 'off'}"
                        print(f"measuring {label} …", flush=True)
                        rows.append(measure(label, server.port, server.pid, args.duration, pool, body, args.heavy_clients, key))
    baseline = rows[0][0].percentile(0.99)
    print(f"\n{'trivial query':<58} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'p99 ×alone':>10} {'server CPU':>10}  heavy answered/throttled")
    for latencies, outcome in rows:
        p99 = latencies.percentile(0.99)
        heavy = f"{outcome[0]:,}/{outcome[1]:,}" + (f" ({outcome[2]} other)" if outcome[2] else "") if outcome else "-"
        print(f"{latencies.label:<58} {len(latencies.samples):>6} {statistics.median(latencies.samples) * 1000:>8.1f} "
              f"{p99:>8.1f} {p99 / baseline:>10.1f} {latencies.cpu_share:>9.0%}  {heavy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
