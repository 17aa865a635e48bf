"""`serve --demo` connects the taobao channel to a simulated marketplace: a trade bought there
is pulled (or pushed), fulfilled, and its delivery recorded by the marketplace, once, by a
real gateway process with nothing else running."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import Settings
from services.core.database import Database
from services.core.migrate import upgrade
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from tests.e2e.server import free_port, running_gateway
from tests.support import fresh_database, new_secret_key


@pytest.fixture(scope="module")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from fresh_database(tmp_path_factory.mktemp("demo-marketplace"))


async def _delivered(market: httpx.AsyncClient, tids: set[str], within: float = 40.0) -> list[dict[str, Any]]:
    async with asyncio.timeout(within):
        while True:
            found = [d for d in (await market.get("/control/deliveries")).json() if d["tid"] in tids]
            if len(found) == len(tids):
                return found
            await asyncio.sleep(0.5)


@pytest.mark.e2e
async def test_serve_demo_delivers_the_simulated_marketplaces_trades(demo_database: str, tmp_path: Path) -> None:
    key = new_secret_key()
    await asyncio.to_thread(upgrade, demo_database)
    db = Database.connect(Settings(database_url=demo_database, secret_key=key))
    try:
        await seed_demo(db, SecretBox(key))
    finally:
        await db.dispose()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"QUANYI_DEMO": "1", "QUANYI_PUBLIC_URL": url}
    async with running_gateway(demo_database, key, tmp_path / "gateway.log", env=env, port=port) as server:
        async with httpx.AsyncClient(base_url=f"{server.url}/demo-marketplace/taobao", timeout=10.0) as market:
            pulled = await market.post("/control/trades", json={
                "outer_id": "QB-10", "quantity": 1, "price": "9.90", "phone": "13800138000"})
            pushed = await market.post("/control/trades", json={
                "outer_id": "GS-60", "quantity": 1, "price": "6.00", "phone": "13800138001",
                "account": "800123456", "push": True})
            assert pushed.json()["pushed"] == 200
            tids = {pulled.json()["trade"]["tid"], pushed.json()["trade"]["tid"]}
            delivered = {d["tid"]: d for d in await _delivered(market, tids)}
    assert len(delivered[pulled.json()["trade"]["tid"]]["codes"]) == 1
    assert len(delivered[pushed.json()["trade"]["tid"]]["topups"]) == 1
    assert all(d["requests"] == 1 for d in delivered.values())
    # The gateway polling the marketplace it mounts (every 5 s) writes no line per poll: no outbound
    # request lines (their URLs carry signed queries), no request line of the polled route, no job
    # line of a poll that only waits for its next turn. The trades' own jobs are still told.
    lines = (tmp_path / "gateway.log").read_text().splitlines()
    assert not [line for line in lines if "httpx" in line or "router/rest" in line], lines
    assert not [line for line in lines if "marketplace.pull" in line and " later" in line], lines
    assert [line for line in lines if "job marketplace.report" in line or "job fulfil" in line], lines
