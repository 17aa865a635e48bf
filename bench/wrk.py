"""wrk, the compiled HTTP load generator, driving one server for the catalog benchmark.

wrk (`apt-get install wrk`) is written in C on epoll: one thread of it keeps 32 connections
busy for a fraction of a core, so the figure is the server's, not the client's (the Python
client in load.py needs most of a core at the HTTP floor). Every answer is checked by
same_answer.lua: 200, and the expected `data` with no `errors`; the gateway's
`extensions.cost` is allowed beside it, since plain strawberry has none.

The client's CPU is wrk's own (its resource usage once it exits), the server's is read from
/proc before and after the measured run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import orjson
from report import Figures
from servers import BENCH, HOST, Server, tree_cpu

SCRIPT = BENCH / "same_answer.lua"
MISSING = "wrk is not installed: `apt-get install -y wrk` (Debian and Ubuntu) or build it from github.com/wg/wrk"


def available() -> bool:
    return shutil.which("wrk") is not None


def expected_data(answer: bytes) -> bytes:
    """The `data` every answer must carry, encoded as the servers encode it (orjson, compact)."""
    return orjson.dumps(orjson.loads(answer)["data"])


def measure(
    server: Server, body: bytes, answer: bytes, *, concurrency: int, warmup: float, duration: float
) -> Figures:
    with tempfile.TemporaryDirectory(prefix="quanyi-wrk-") as scratch:
        folder = Path(scratch)
        (folder / "body.json").write_bytes(body)
        (folder / "data.json").write_bytes(expected_data(answer))
        env = {
            **os.environ,
            "QUANYI_BENCH_BODY": str(folder / "body.json"),
            "QUANYI_BENCH_DATA": str(folder / "data.json"),
        }
        url = f"http://{HOST}:{server.port}/graphql"
        if warmup > 0:
            _wrk(url, env, concurrency, warmup)
        before = tree_cpu(server.pid)
        summary, first, client_cpu = _wrk(url, env, concurrency, duration)
        after = tree_cpu(server.pid)
    seconds = summary["duration_us"] / 1e6
    failed = summary["mismatches"] + summary["socket_errors"]
    completed = summary["requests"] - summary["mismatches"]
    if failed and first:
        print(f"  first mismatch: {first[:300]}")
    server_cpu = after - before if before is not None and after is not None else None
    return Figures(
        server=server.name,
        rps=completed / seconds,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        server_cpu_us=server_cpu / completed * 1e6 if server_cpu is not None and completed else None,
        client_cpu=client_cpu / seconds,
        failed=failed,
    )


def _wrk(url: str, env: dict[str, str], concurrency: int, seconds: float) -> tuple[dict[str, int], str, float]:
    command = [
        "wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
        "-s", str(SCRIPT), url,
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    output = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output}")
    summary: dict[str, int] | None = None
    first = ""
    for line in output.splitlines():
        if line.startswith("QUANYI "):
            summary = orjson.loads(line[len("QUANYI "):])
        elif line.startswith("QUANYI-FIRST "):
            first = line[len("QUANYI-FIRST "):].strip()
    if summary is None:
        raise RuntimeError(f"wrk printed no summary:\n{output}")
    return summary, first, usage.ru_utime + usage.ru_stime
