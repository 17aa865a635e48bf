"""`quanyi marketplace-sim`: the simulated marketplace as its own process, pulled through the
open-platform adapter, its duplicates and failures set by flags."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from marketplaces.base import MarketplaceUnavailable
from marketplaces.http import OpenPlatformAdapter
from tests.suppliers.conftest import free_port
from tests.suppliers.test_supplier_sim_cli import until_listening

ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def marketplace_sim(*args: str, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    environment.update(env, PYTHONUNBUFFERED="1")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from gateway import main; main()", "marketplace-sim", *args,
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


@pytest.mark.e2e
async def test_the_command_serves_a_signed_marketplace_with_duplicates_and_failures() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    flags = ["--port", str(port), "--app-key", "cli-key", "--duplicate-rate", "1", "--seed", "1"]
    async with marketplace_sim(*flags, env={"QUANYI_MARKETPLACE_SIM_SECRET": "cli-secret"}) as process:
        await until_listening(url, process)
        async with httpx.AsyncClient(base_url=url) as client:
            sold = await client.post("/control/trades", json={"outer_id": "QB-10", "price": "9.90"})
            tid = sold.json()["trade"]["tid"]
        adapter = OpenPlatformAdapter(url, "cli-key", "cli-secret", timeout_seconds=1.0)
        now = datetime.now(UTC)
        window = (now - timedelta(minutes=5), now + timedelta(seconds=2))
        page = await adapter.trades_since(*window, 1, 10)
        assert [trade.tid for trade in page.trades] == [tid, tid]  # every trade repeated, as the flag asks
        async with httpx.AsyncClient(base_url=url) as client:
            await client.post("/control", json={"fail_pulls": 1, "failure": "timeout", "hang_ms": 3000})
        with pytest.raises(MarketplaceUnavailable, match="no answer in time"):
            await adapter.trades_since(*window, 1, 10)
        await adapter.close()
