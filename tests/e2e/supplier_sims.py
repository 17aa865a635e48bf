"""Real simulated suppliers (`quanyi supplier-sim` processes) and a demo shop wired to them.

The gateway reaches each simulator over HTTP with the supplier's own signing secret, as it
would a real supplier; `/control` on a simulator changes its faults while it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

from config import Settings
from domain.access import Role
from models import Sku, Supplier
from services.access.keys import issue_key
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from services.fulfilment.supplier_registry import seal_secret
from tests.e2e.server import PROJECT

SECRET = "crash-test-supplier-secret"
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }
"""
PAY = """
mutation Pay($id: ID!, $ref: String!) { payOrder(orderId: $id, paymentReference: $ref) { userErrors { code } } }
"""


@contextlib.contextmanager
def supplier_sim(port: int, log: Path, *args: str, secret: str = SECRET) -> Iterator[str]:
    """A simulator process on `port` signing with `secret`, stopped on the way out."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    environment.update(PYTHONUNBUFFERED="1", QUANYI_SUPPLIER_SIM_SECRET=secret)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", "from gateway import main; main()", "supplier-sim", "--port", str(port), *args],
            cwd=PROJECT, env=environment, stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def listening(url: str) -> None:
    async with asyncio.timeout(30), httpx.AsyncClient(base_url=url) as client:
        while True:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/control")).status_code == 200:
                    return
            await asyncio.sleep(0.1)


async def prepare(
    url: str, key: bytes, sims: Mapping[str, str], secrets: Mapping[str, str] | None = None,
) -> tuple[Database, str, dict[str, int]]:
    """The demo shop on `url`, its suppliers pointed at the simulators (`sims`: supplier code
    to base URL; `secrets`: supplier code to signing secret, SECRET by default), an admin key,
    and the SKUs' ids by code."""
    db = Database.connect(Settings(database_url=url, secret_key=key))
    box = SecretBox(key)
    await seed_demo(db, box)
    async with db.sessions() as session, session.begin():
        admin = await issue_key(session, role=Role.ADMIN, channel=None, name="supplier tests")
        for code, base_url in sims.items():
            secret = (secrets or {}).get(code, SECRET)
            await session.execute(update(Supplier).where(Supplier.code == code).values(
                adapter="http", base_url=base_url, secret_ciphertext=seal_secret(box, code, secret),
                timeout_seconds=2.0))
        skus = {row.code: row.id for row in await session.scalars(select(Sku))}
    return db, admin.plaintext, skus


async def control(url: str, **faults: Any) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.post("/control", json=faults)).status_code == 200


async def submissions(url: str) -> dict[str, dict[str, Any]]:
    """Every request the simulator received, by request id."""
    async with httpx.AsyncClient(base_url=url) as client:
        return {row["request_id"]: row for row in (await client.get("/control/submissions")).json()}
