"""`quanyi supplier-sim`: the simulator as its own process, driven through the HTTP adapter."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from domain.money import Money
from suppliers.base import Outcome, Result, TopUp
from suppliers.http import HttpSupplier
from tests.suppliers.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cli-sim-secret"


@contextlib.asynccontextmanager
async def supplier_sim(
    *args: str, env: dict[str, str]
) -> AsyncIterator[asyncio.subprocess.Process]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    environment.update(env, PYTHONUNBUFFERED="1")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from gateway import main; main()", "supplier-sim", *args,
        cwd=ROOT, env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def until_listening(url: str, process: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(30), httpx.AsyncClient(base_url=url) as client:
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"supplier-sim exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/control")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


@pytest.mark.e2e
async def test_the_command_serves_a_signed_supplier_that_credits_once() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ("--port", str(port), "--mode", "sync", "--latency-ms", "0", "--seed", "3")
    async with supplier_sim(*args, env={"QUANYI_SUPPLIER_SIM_SECRET": SECRET}) as process:
        await until_listening(url, process)
        adapter = HttpSupplier("sim", url, SECRET)
        topup = TopUp("Q3001-1", "QQ-COIN-50", "13800138000", 1, Money.of("50.00"))
        try:
            answers = [await adapter.submit(topup), await adapter.submit(topup)]
            found = await adapter.query("Q3001-1")
            balance = await adapter.balance()
        finally:
            await adapter.close()
        process.terminate()
        out, err = await process.communicate()

    credited = Result(Outcome.SUCCEEDED, "Q3001-1", "SIM00000001", "")
    assert (answers, found, balance) == ([credited, credited], credited, Money.of("99950.00"))
    assert out.decode().splitlines()[0] == (
        f"Supplier simulator on {url} (sync mode, latency 0 ms, fail rate 0.0); "
        f"faults: {url}/control"
    )
    assert SECRET not in out.decode() + err.decode()


async def test_the_command_needs_a_secret() -> None:
    async with supplier_sim("--port", str(free_port()), env={}) as process:
        _, err = await process.communicate()

    assert (process.returncode, err.decode().strip().splitlines()[-1]) == (
        2, "quanyi: give the shared secret: --secret or QUANYI_SUPPLIER_SIM_SECRET",
    )
