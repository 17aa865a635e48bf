"""A supplier down for a while: top-ups wait for it instead of a refund storm.

A real gateway and a real simulated supplier (`quanyi supplier-sim`) that fails every top-up
(`fail_all` through `/control`), standing in for both suppliers of the SKU. The first
orders are refunded one by one until the gateway takes the supplier for down (3 failures in
a row); from then on the top-ups paid meanwhile are not sent: their orders wait in
FULFILLING, the supplier is reported down in /metrics (the `QuanyiSupplierDown` alert). Only
a probe now and then (pauses of 1 s, then 2 s, ...) is sent; a probe the supplier refuses is
refunded like any refused top-up (its request id is spent at that supplier). When the
supplier answers again every order that was held back is delivered, each request sent once.
Without the hold all twelve orders would have been refunded.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from domain.orders import OrderStatus
from models import Order
from schema.relay import encode_id
from services.core.database import Database
from tests.e2e.server import free_port, running_gateway
from tests.e2e.supplier_sims import PAY, PLACE, control, listening, prepare, submissions, supplier_sim
from tests.e2e.shop import migrated_database
from tests.scrape import Scrape
from tests.support import new_secret_key

pytestmark = pytest.mark.e2e

THRESHOLD = 3  # services/fulfilment/supplier_health.py: failures in a row before a supplier is down


async def _buy(http: httpx.AsyncClient, admin: str, sku: int, n: int) -> str:
    placed = (await http.post("/graphql", json={"query": PLACE, "variables": {"input": {
        "channel": "web", "idempotencyKey": f"supplier-outage-{n:04d}-0000", "lines": [{"skuId": encode_id("Sku", sku), "quantity": 1}],
        "buyer": {"phone": "13800138000", "rechargeAccount": f"acct-outage-{n}"}}}})).json()["data"]["placeOrder"]
    paid = await http.post("/graphql", headers={"authorization": f"Bearer {admin}"},
                           json={"query": PAY, "variables": {"id": placed["order"]["id"], "ref": f"outage-{n}"}})
    assert paid.json()["data"]["payOrder"]["userErrors"] == []
    return f"outage-{n}"


async def _statuses(db: Database) -> dict[str, OrderStatus]:
    async with db.fresh_sessions() as session:
        return dict((await session.execute(select(Order.payment_reference, Order.status))).all())  # type: ignore[arg-type]


async def _until(db: Database, wanted: dict[str, OrderStatus], seconds: float = 20) -> dict[str, OrderStatus]:
    deadline = time.monotonic() + seconds
    while True:
        statuses = await _statuses(db)
        if all(statuses.get(ref) == status for ref, status in wanted.items()) or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.1)


async def test_a_supplier_down_for_a_while_holds_top_ups_back_instead_of_refunding_them(tmp_path: Path) -> None:
    key = new_secret_key()
    sim_port, gateway_port = free_port(), free_port()
    env = {"QUANYI_WORKER": "1", "QUANYI_WORKER_POLL_SECONDS": "0.2", "QUANYI_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}"}
    with supplier_sim(sim_port, tmp_path / "sim.log", "--mode", "sync", "--latency-ms", "0") as sim:
        async with asyncio.timeout(90), migrated_database(tmp_path) as url:
            await listening(sim)
            db, admin, skus = await prepare(url, key, {"sim-fast": sim, "sim-backup": sim})
            try:
                async with running_gateway(url, key, tmp_path / "gateway.log", env=env, port=gateway_port) as gateway, \
                        httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
                    # Given a supplier that fails everything
                    await control(sim, fail_all=True)
                    # When buyers keep paying for top-ups, the first are refunded, one after another
                    first = [await _buy(http, admin, skus["GS-60"], n) for n in range(THRESHOLD)]
                    for ref in first:
                        statuses = await _until(db, {ref: OrderStatus.REFUNDED})
                        assert statuses[ref] == OrderStatus.REFUNDED
                    # And then the gateway takes the supplier for down: later orders wait
                    waiting = [await _buy(http, admin, skus["GS-60"], n) for n in range(THRESHOLD, THRESHOLD + 9)]
                    await asyncio.sleep(3)  # a probe or two
                    async with db.fresh_sessions() as session:
                        numbers = dict((await session.execute(select(Order.payment_reference, Order.number))).all())
                    heard = await submissions(sim)
                    probed = [ref for ref in waiting if numbers[ref] in heard]
                    assert 1 <= len(probed) <= 3, probed
                    statuses = await _until(db, dict.fromkeys(probed, OrderStatus.REFUNDED))
                    # Read after the statuses: an order refunded in them had been sent, so it is in here.
                    sent = await submissions(sim)
                    unsent = [ref for ref in waiting if numbers[ref] not in sent]
                    assert len(unsent) >= 9 - 4
                    assert [statuses[ref] for ref in unsent] == [OrderStatus.FULFILLING] * len(unsent)
                    scraped = Scrape.parse((await http.get("/metrics", headers={"authorization": f"Bearer {admin}"})).text)
                    assert scraped.value("quanyi_supplier_down", supplier="sim-fast") == 1

                    # When the supplier answers again
                    await control(sim, fail_all=False)

                    # Then every order held back is delivered and the refunded ones stay refunded. A probe
                    # may still leave in the instant before the supplier recovers (pauses of 1 s, 2 s, ...,
                    # and a loaded machine stretches the steps above), and the supplier refuses it: so each
                    # order is judged by what the supplier answered it — refunded exactly when it refused.
                    settled = {OrderStatus.DELIVERED, OrderStatus.REFUNDED}
                    deadline = time.monotonic() + 30
                    while True:
                        statuses = await _statuses(db)
                        if all(statuses.get(ref) in settled for ref in waiting):
                            break
                        assert time.monotonic() < deadline, statuses
                        await asyncio.sleep(0.1)
                    heard = await submissions(sim)
                    refused = {ref for ref in waiting if heard.get(numbers[ref], {}).get("status") == "FAILED"}
                    assert set(probed) <= refused
                    late_probes = refused - set(probed)
                    assert len(late_probes) <= 1, late_probes  # at most the one probe in flight at recovery
                    held = [ref for ref in waiting if ref not in refused]
                    assert len(held) >= 9 - 4
                    assert [statuses[ref] for ref in held] == [OrderStatus.DELIVERED] * len(held)
                    assert [statuses[ref] for ref in first + sorted(refused)] == [OrderStatus.REFUNDED] * (THRESHOLD + len(refused))
                    scraped = Scrape.parse((await http.get("/metrics", headers={"authorization": f"Bearer {admin}"})).text)
                    assert scraped.value("quanyi_supplier_down", supplier="sim-fast") == 0
                    # And the supplier heard each held order's request once
                    assert {heard[numbers[ref]]["received"] for ref in held} == {1}
                    assert "Traceback" not in gateway.output(), gateway.output()[-3000:]
            finally:
                await db.dispose()
