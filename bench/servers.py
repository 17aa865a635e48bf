"""Server processes for the benchmark: one uvicorn worker each, on a free 127.0.0.1 port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


@dataclass(frozen=True)
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


def project_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of a child process: this working tree's modules come first, whatever
    the virtualenv's install of the project points at."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **extra}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


GATEWAY_APP = "gateway:create_app"


def uvicorn_command(app: str, port: int, *, app_dir: Path, workers: int = 1) -> list[str]:
    # The same uvicorn settings for every server: one worker unless a benchmark compares
    # process counts, no access log, so the comparison is between applications, not
    # logging or process layouts. The gateway is served as `quanyi serve` serves it (its own
    # HTTP protocol, transport/http_protocol.py); `app_dir` is on PYTHONPATH (project_env).
    if app == GATEWAY_APP:
        return [
            sys.executable, "-c", "from cli import run; run()", "serve",
            "--host", HOST, "--port", str(port), "--workers", str(workers), "--log-level", "warning",
        ]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--app-dir",
        str(app_dir),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


@contextlib.contextmanager
def serving(
    name: str, app: str, env: dict[str, str], *, app_dir: Path, cwd: Path, probe: bytes, log: Path,
    workers: int = 1,
) -> Iterator[Server]:
    """Runs one server until the block ends; ready once it answers `probe` with 200. With
    `workers` > 1, uvicorn's supervisor and that many worker processes share the port (the
    server's pid is the supervisor's: `tree_cpu` counts them all)."""
    port = free_port()
    with open(log, "ab") as output:
        process = subprocess.Popen(
            uvicorn_command(app, port, app_dir=app_dir, workers=workers),
            env=project_env(env),
            cwd=cwd,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    server = Server(name, port, process)
    try:
        _wait_ready(server, probe, log)
        yield server
    finally:
        stop(process)


def tree_pids(pid: int) -> list[int]:
    """A process and every live process below it (Linux /proc): a uvicorn supervisor and its
    workers. Empty when the process is gone."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    if not os.path.exists(f"/proc/{pid}"):
        return []
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def tree_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process and every live process below it; None when the
    process is gone."""
    total, seen = 0.0, False
    for member in tree_pids(pid):
        try:
            with open(f"/proc/{member}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        total, seen = total + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), True
    return total if seen else None


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(server: Server, probe: bytes, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://{HOST}:{server.port}/graphql"
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}:\n{_tail(log)}"
            )
        try:
            answer = httpx.post(url, content=probe, headers={"content-type": "application/json"})
            if answer.status_code == 200 and b'"errors"' not in answer.content:
                return
            last = f"{answer.status_code} {answer.content[:300]!r}"
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"{server.name} did not answer the catalog query after {timeout:.0f} s; "
        f"last answer: {last}\n{_tail(log)}"
    )


def _tail(log: Path, lines: int = 25) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def fetch(port: int, body: bytes) -> tuple[int, bytes]:
    answer = httpx.post(
        f"http://{HOST}:{port}/graphql",
        content=body,
        headers={"content-type": "application/json", "accept": "application/json"},
    )
    return answer.status_code, answer.content
