"""Servers of a test's own, to stop and start again: the machine's shared Redis and
PostgreSQL serve other test runs, so a test that needs an outage makes its own.

`ThrowawayRedis`: a `redis-server` on a free port, nothing saved. `ThrowawayPostgres`: a
cluster made with `initdb` in a temporary folder and run with `pg_ctl` on a free port (as
the `postgres` user when the test runs as root, which initdb refuses). Stopping is abrupt
(SIGKILL for Redis, `pg_ctl stop -m immediate` for PostgreSQL): as a crash is.
`ThrowawayStandby`: a streaming replica of a throwaway cluster, made with `pg_basebackup -R`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _require(binary: str | Path) -> str:
    found = shutil.which(str(binary))
    if found is None:
        raise RuntimeError(f"this test needs {binary} (Debian: redis-server, postgresql-15)")
    return found


class ThrowawayRedis:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.log = folder / f"redis-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = _require("redis-server")
        with self.log.open("ab") as sink:
            self._process = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.folder)],
                stdout=sink, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while not await asyncio.to_thread(self._answers):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.log.read_text(errors='replace')}")
            await asyncio.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None


@contextlib.asynccontextmanager
async def throwaway_redis(folder: Path) -> AsyncIterator[ThrowawayRedis]:
    server = ThrowawayRedis(folder)
    await server.start()
    try:
        yield server
    finally:
        server.kill()


class ThrowawayPostgres:
    """A PostgreSQL cluster of the test's own, trusting local connections as `postgres`."""

    def __init__(self) -> None:
        self.port = free_port()
        # A folder of its own, not the test's: pytest's are private to root, and the server
        # runs as `postgres` when the test runs as root.
        self.folder = Path(tempfile.mkdtemp(prefix="quanyi-pg-"))
        self.data = self.folder / "pgdata"
        self.log = self.folder / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        if os.geteuid() == 0:  # initdb refuses root
            command = ("runuser", "-u", "postgres", "--", *command)
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def create(self) -> None:
        self.folder.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(_require(POSTGRES_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        self._run(_require(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30",
                  "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def crash(self) -> None:
        """Stop at once, as a crash does: connections are cut, nothing is shut down cleanly."""
        self._run(_require(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(_require(POSTGRES_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class ThrowawayStandby(ThrowawayPostgres):
    """A hot standby streaming from `primary`: a base backup of it, started on a port of its own.

    initdb's trust rules let the `postgres` user connect for replication from 127.0.0.1, and
    `wal_level` is `replica` by default, so the primary needs nothing more.
    """

    def __init__(self, primary: ThrowawayPostgres) -> None:
        super().__init__()
        self.primary = primary

    def create(self) -> None:
        self.folder.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        # -R writes standby.signal and the primary's address; a fast checkpoint starts the copy at once.
        self._run(_require(POSTGRES_BIN / "pg_basebackup"), "-D", str(self.data), "-h", "127.0.0.1",
                  "-p", str(self.primary.port), "-U", "postgres", "-R", "-X", "stream", "--checkpoint=fast",
                  "--no-sync")


@contextlib.asynccontextmanager
async def throwaway_postgres() -> AsyncIterator[ThrowawayPostgres]:
    cluster = ThrowawayPostgres()
    try:
        await asyncio.to_thread(cluster.create)
        await asyncio.to_thread(cluster.start)
        yield cluster
    finally:
        await asyncio.to_thread(cluster.stop)
        cluster.remove()


@contextlib.asynccontextmanager
async def throwaway_standby(primary: ThrowawayPostgres) -> AsyncIterator[ThrowawayStandby]:
    standby = ThrowawayStandby(primary)
    try:
        await asyncio.to_thread(standby.create)
        await asyncio.to_thread(standby.start)
        yield standby
    finally:
        await asyncio.to_thread(standby.stop)
        standby.remove()
