"""A real gateway process for end-to-end tests: `quanyi serve` on a free port, always stopped."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import TEST_REDIS_URL

PROJECT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Server:
    url: str
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as if the machine lost power."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(database_url: str, secret_key: bytes, extra: dict[str, str]) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    environment.update(
        QUANYI_DATABASE_URL=database_url,
        QUANYI_SECRET_KEY=base64.urlsafe_b64encode(secret_key).decode(),
        PYTHONUNBUFFERED="1",
        # Load from one address would be throttled; admission tests turn budgets back on.
        QUANYI_RATE_LIMITS="0",
        # Likewise held: a rush of buyers from one address; tests of holds set their caps.
        QUANYI_HOLD_LIMIT="0",
        QUANYI_HOLD_LIMIT_PER_IP="0",
    )
    if TEST_REDIS_URL:
        environment["QUANYI_REDIS_URL"] = TEST_REDIS_URL
    environment.update(extra)
    return environment


@contextlib.asynccontextmanager
async def running_gateway(
    database_url: str, secret_key: bytes, log: Path, *, env: dict[str, str] | None = None, startup_seconds: float = 30.0,
    port: int | None = None,
) -> AsyncIterator[Server]:
    """`quanyi serve` on the given database until the block ends.

    The process is stopped on the way out whatever happened: terminated, then killed if it
    does not finish within a few seconds.
    """
    port = port or free_port()
    process = start_process(_command(port), _environment(database_url, secret_key, env or {}), log)
    server = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        await _until_ready(server, process, startup_seconds)
        yield server
    finally:
        _stop(process)


@contextlib.asynccontextmanager
async def running_gateways(
    database_url: str, secret_key: bytes, logs: list[Path], *, env: dict[str, str] | None = None,
    ports: list[int] | None = None, startup_seconds: float = 30.0,
) -> AsyncIterator[list[Server]]:
    """Several gateways on one database, started together (their start-ups overlap), each
    logging to its own file; `QUANYI_PUBLIC_URL` is each one's own address. All are stopped
    on the way out, whatever happened."""
    ports = ports or [free_port() for _ in logs]
    servers: list[Server] = []
    try:
        for port, log in zip(ports, logs, strict=True):
            url = f"http://127.0.0.1:{port}"
            environment = _environment(database_url, secret_key, {"QUANYI_PUBLIC_URL": url, **(env or {})})
            servers.append(Server(url, log, start_process(_command(port), environment, log)))
        await asyncio.gather(*(_until_ready(server, server.process, startup_seconds) for server in servers
                               if server.process is not None))
        yield servers
    finally:
        for server in servers:
            if server.process is not None:
                _stop(server.process)


def _command(port: int) -> list[str]:
    # As production starts it: `quanyi serve`, with its own HTTP protocol (transport/http_protocol.py).
    return [
        sys.executable, "-c", "from cli import run; run()", "serve",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]


def start_process(command: list[str], environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as sink:
        return subprocess.Popen(command, cwd=PROJECT, env=environment, stdout=sink, stderr=subprocess.STDOUT)


async def _until_ready(server: Server, process: subprocess.Popen[bytes], within: float) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=server.url, timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the gateway exited with {process.returncode}:\n{server.output()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway was not ready within {within} s:\n{server.output()}")
            await asyncio.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
