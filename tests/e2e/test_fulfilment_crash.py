"""Fulfilment survives a SIGKILL: every paid order ends DELIVERED or REFUNDED, exactly once.

Two gateway processes share one database, and both run the job worker. Two real simulated
suppliers (`quanyi supplier-sim`) answer slowly and call back, and each refuses a share of
top-ups, so some orders fail over and some fail at both and are refunded. Orders of every
kind (card codes, single-use and multi-use serials, top-ups, bundles) are paid through both
gateways; one gateway is killed while it holds jobs (read from the job table: leases it took
and never settled), and the other takes them over when their leases end.

Afterwards the database itself is checked: no code or serial use sold twice, no top-up sent
twice to a supplier, stock that agrees with what was delivered, a balanced ledger with one
delivery posting set per delivered line, and each refund paid out.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from domain.orders import OrderStatus
from models import Job, JobAttempt, Order, OrderLine, Refund, Sku
from schema.relay import encode_id
from services.core.database import Database
from services.core.jobs import lease_holder, lease_token
from tests.e2e import books
from tests.e2e.server import Server, free_port, running_gateways
from tests.e2e.shop import migrated_database
from tests.e2e.supplier_sims import PAY, PLACE, control, listening, prepare, submissions, supplier_sim
from tests.support import new_secret_key

pytestmark = pytest.mark.e2e

# (SKU, orders, units each): codes, serials of one use and of five, top-ups, bundles (a code and a top-up).
MIX = [("QB-10", 16, 1), ("SN-1USE", 8, 1), ("SN-5USES", 8, 2), ("GS-60", 26, 1), ("TXV-MONTH", 12, 1),
       ("PACK-GAMER", 12, 1)]
COUNTS = {code: count for code, count, _ in MIX}
# Every order's (SKU, number within its SKU, units), the kinds interleaved as buyers would come.
PLAN = sorted(((code, n, units) for code, count, units in MIX for n in range(count)),
              key=lambda order: (order[1] / COUNTS[order[0]], order[0]))
ORDERS = len(PLAN)
TOP_UPS = ("GS-60", "TXV-MONTH", "PACK-GAMER")
FINAL = {OrderStatus.DELIVERED, OrderStatus.REFUNDED}
LEASE_SECONDS = 4.0
# Accounts both suppliers refuse: their top-ups fail everywhere, so some refunds are certain.
REFUSED = ["acct-GS-60-4", "acct-GS-60-20", "acct-TXV-MONTH-7", "acct-PACK-GAMER-5"]


CATALOG = """
{ products(channel: "web", first: 100) { edges { node { skus { code stock { available reserved } } } } } }
"""


@dataclass(frozen=True)
class Lease:
    """A job under a worker's lease, and when that worker claimed it."""

    job_id: int
    key: str
    claimed_at: datetime


async def test_a_gateway_killed_while_running_jobs_leaves_every_paid_order_fulfilled_once(tmp_path: Path) -> None:
    key = new_secret_key()
    fast_port, backup_port = free_port(), free_port()
    common = ("--latency-ms", "100", "--jitter-ms", "50", "--mode", "async", "--fail-rate", "0.25")
    env = {
        "QUANYI_WORKER": "1", "QUANYI_WORKER_POLL_SECONDS": "0.2", "QUANYI_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
        "QUANYI_WORKER_CONCURRENCY": "8", "QUANYI_EXPIRY_INTERVAL_SECONDS": "3600", "QUANYI_RESPONSE_CACHE": "0",
        # With Redis: events of their own, so that other runs sharing it never wake these workers.
        "QUANYI_BROKER_PREFIX": f"quanyi-crash-{uuid.uuid4().hex[:8]}:",
    }
    with supplier_sim(fast_port, tmp_path / "fast.log", *common, "--seed", "7") as fast, \
            supplier_sim(backup_port, tmp_path / "backup.log", *common, "--seed", "8") as backup:
        async with migrated_database(tmp_path) as url:
            await listening(fast)
            await listening(backup)
            for sim in (fast, backup):
                await control(sim, fail_accounts=REFUSED)
            db, admin, skus = await prepare(url, key, {"sim-fast": fast, "sim-backup": backup})
            before = await books.stock(db)
            try:
                async with running_gateways(url, key, [tmp_path / "a.log", tmp_path / "b.log"], env=env) as (a, b):
                    started = time.monotonic()
                    # Buyers keep coming while one gateway is killed mid-way: it runs jobs, some orders
                    # are finished, others not yet paid; a request it dropped is sent to the other.
                    (at_kill, abandoned), retried = await asyncio.gather(
                        _kill_when_busy(db, a, finished=ORDERS // 10), _place_and_pay((a, b), admin, skus))
                    after = await _until(db, lambda s: sum(s[x] for x in FINAL) == ORDERS, 90)
                    await _jobs_done(db, 30)
                    elapsed = time.monotonic() - started
                    shown = await _catalog_stock(b)
                    b_log = b.output()
                print(f"\n{ORDERS} orders through two gateways, one killed holding {len(abandoned)} jobs"
                      f" ({sum(at_kill[x] for x in FINAL)} orders ended then, {retried} requests sent again):"
                      f" {dict(after)} in {elapsed:.1f} s")

                assert 0 < sum(at_kill[x] for x in FINAL) < ORDERS, at_kill
                assert set(after) <= FINAL and sum(after.values()) == ORDERS, after
                assert abandoned, "the killed gateway held no job"
                await _taken_over(db, abandoned, _worker(b))
                assert "Traceback" not in b_log, b_log[-4000:]
                assert after[OrderStatus.REFUNDED] >= len(REFUSED), after
                await _refunds_paid_out(db)
                await _no_top_up_sent_twice(db, await submissions(fast), await submissions(backup))
                await books.assert_stock_consistent(db, before)
                # What the catalog shows agrees with the codes, uses and counters left.
                expected = await books.expected_figures(db, before)
                assert {code for code, _, _ in MIX} <= set(shown)
                assert shown == {code: expected[code] for code in shown}
                await books.assert_ledger_balanced(db)
                await books.assert_lines_posted(db)
                await books.assert_refunds_match_lines(db)
            finally:
                await db.dispose()


async def _place_and_pay(gateways: tuple[Server, Server], admin: str, skus: dict[str, int]) -> int:
    """Every order placed and paid, spread over both gateways. A request a gateway drops (it
    died) is sent to the other, as a load balancer would: the idempotency key and the payment
    reference make the second try the same order and the same payment. Returns how many were."""
    retried = 0
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=32)) as http:
        async def post(first: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
            nonlocal retried
            try:
                answer = await http.post(f"{gateways[first % 2].url}/graphql", json=body, headers=headers)
            except httpx.TransportError:
                retried += 1
                answer = await http.post(f"{gateways[(first + 1) % 2].url}/graphql", json=body, headers=headers)
            return dict(answer.json())

        async def one(index: int, code: str, n: int, units: int) -> None:
            placed = (await post(index, {"query": PLACE, "variables": {"input": {
                "channel": "web", "idempotencyKey": f"crash-order-{code}-{n:04d}",
                "lines": [{"skuId": encode_id("Sku", skus[code]), "quantity": units}],
                "buyer": {"phone": "13800138000", "rechargeAccount": f"acct-{code}-{n}"},
            }}}))["data"]["placeOrder"]
            assert placed["userErrors"] == [], (code, placed)
            payment = {"id": placed["order"]["id"], "ref": f"pay-{code}-{n}"}
            paid = await post(index + 1, {"query": PAY, "variables": payment}, {"authorization": f"Bearer {admin}"})
            assert paid["data"]["payOrder"]["userErrors"] == [], paid

        semaphore = asyncio.Semaphore(16)

        async def bounded(index: int, code: str, n: int, units: int) -> None:
            async with semaphore:
                await one(index, code, n, units)

        await asyncio.gather(*(bounded(i, code, n, units) for i, (code, n, units) in enumerate(PLAN)))
    return retried


async def _kill_when_busy(db: Database, gateway: Server, *, finished: int) -> tuple[Counter[OrderStatus], list[Lease]]:
    """SIGKILL `gateway` once `finished` orders have ended and it holds a lease on a job; the
    order statuses just before, and the jobs it held, read after the kill: what the dead
    process held stays as it left it until the leases end."""
    worker = _worker(gateway)
    deadline = time.monotonic() + 60
    while True:
        statuses = await _statuses(db)
        if sum(statuses[x] for x in FINAL) >= finished and await _leased_by(db, worker):
            gateway.kill()
            return statuses, await _leased_by(db, worker)
        assert time.monotonic() < deadline, f"{worker} ran no job: {statuses}"
        await asyncio.sleep(0.05)


async def _catalog_stock(gateway: Server) -> dict[str, tuple[int, int]]:
    """Each SKU's (available, reserved) as the web catalog shows it."""
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        answer = (await http.post("/graphql", json={"query": CATALOG})).json()
    return {sku["code"]: (sku["stock"]["available"], sku["stock"]["reserved"])
            for edge in answer["data"]["products"]["edges"] for sku in edge["node"]["skus"]}


async def _statuses(db: Database) -> Counter[OrderStatus]:
    async with db.fresh_sessions() as session:
        return Counter(await session.scalars(select(Order.status)))


async def _until(db: Database, done: Callable[[Counter[OrderStatus]], bool], seconds: float) -> Counter[OrderStatus]:
    """The order statuses once `done` holds, or at `seconds` (generous: on a loaded machine
    fulfilment is slow, and the bound only matters when it stalls)."""
    deadline = time.monotonic() + seconds
    while True:
        statuses = await _statuses(db)
        if done(statuses) or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.1)


async def _jobs_done(db: Database, seconds: float) -> None:
    """Until every job (deliveries, refunds handed to the provider) is done."""
    deadline = time.monotonic() + seconds
    while True:
        async with db.fresh_sessions() as session:
            waiting = list(await session.scalars(select(Job.key).where(Job.status != "DONE")))
        if not waiting:
            return
        assert time.monotonic() < deadline, waiting
        await asyncio.sleep(0.1)


async def _leased_by(db: Database, worker: str) -> list[Lease]:
    """The jobs `worker` holds a lease on now."""
    async with db.fresh_sessions() as session:
        rows = (await session.execute(
            select(Job.id, Job.key, Job.lease, Job.locked_until)
            .where(Job.status == "READY", Job.lease.is_not(None)))).all()
    holder = lease_holder(lease_token(worker))  # as the lease writes it, cut to fit
    return [Lease(job_id, key, locked_until - timedelta(seconds=LEASE_SECONDS))
            for job_id, key, lease, locked_until in rows if lease_holder(lease) == holder and locked_until is not None]


def _worker(server: Server) -> str:
    """The worker name the server's process claims jobs under (services/core/worker.py)."""
    assert server.process is not None
    return f"{socket.gethostname()}:{server.process.pid}"[:64]


async def _taken_over(db: Database, abandoned: list[Lease], survivor: str) -> None:
    """Each abandoned job was claimed again by the survivor once its lease ended, and finished."""
    async with db.fresh_sessions() as session:
        jobs = dict((await session.execute(
            select(Job.id, Job.status).where(Job.id.in_([lease.job_id for lease in abandoned])))).all())
        later = (await session.execute(
            select(JobAttempt.job_id, JobAttempt.worker, JobAttempt.started_at)
            .where(JobAttempt.job_id.in_(list(jobs))))).all()
    for lease in abandoned:
        runs = [(worker, started) for job_id, worker, started in later if job_id == lease.job_id]
        ended = lease.claimed_at + timedelta(seconds=LEASE_SECONDS)
        resumed = [started for worker, started in runs if worker == survivor and started >= ended]
        assert jobs[lease.job_id] == "DONE" and resumed, (lease, runs)


async def _refunds_paid_out(db: Database) -> None:
    """Every refund fulfilment recorded was handed to the payment provider by its job."""
    async with db.fresh_sessions() as session:
        refunds = list(await session.scalars(select(Refund.id)))
        handed = dict((await session.execute(select(Job.key, Job.status).where(Job.kind == "refund"))).all())
    assert refunds and {handed.get(f"refund:{refund}") for refund in refunds} == {"DONE"}


async def _no_top_up_sent_twice(
    db: Database, fast: dict[str, dict[str, Any]], backup: dict[str, dict[str, Any]],
) -> None:
    # Each supplier received each request once; the backup only what the first refused.
    assert {row["received"] for row in [*fast.values(), *backup.values()]} == {1}
    assert all(fast[request]["status"] == "FAILED" for request in backup if request in fast)
    assert set(backup) <= set(fast)
    async with db.fresh_sessions() as session:
        delivered_top_ups = len(list(await session.scalars(
            select(OrderLine.id).join(Sku, Sku.id == OrderLine.sku_id)
            .where(OrderLine.outcome == "DELIVERED", Sku.code.in_(TOP_UPS)))))
    credited = [r for r in [*fast.values(), *backup.values()] if r["status"] == "SUCCEEDED"]
    assert len(credited) == delivered_top_ups
