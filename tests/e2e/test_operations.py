"""An on-call engineer's view of a real gateway process: JSON log lines and /metrics.

The gateway runs as production runs it (`uvicorn gateway:create_app --factory`, nothing set
about logs): every line it writes is one JSON object, each request's line carries its
request id, each job's line its outcome, and no buyer's phone number or e-mail address
appears in clear anywhere in what it wrote.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import select

from config import Settings
from domain.access import Role
from models import Sku
from schema.relay import encode_id
from services.access.keys import issue_key
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from tests.e2e.server import Server, _stop, free_port, running_gateway, start_process
from tests.e2e.shop import migrated_database
from tests.scrape import Scrape
from tests.support import TEST_REDIS_URL, new_secret_key

pytestmark = pytest.mark.e2e

PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }
"""
PAY = """
mutation Pay($id: ID!, $ref: String!) { payOrder(orderId: $id, paymentReference: $ref) { userErrors { code } } }
"""
PHONE, EMAIL = "13800138000", "buyer.one@example.com"
CATALOG = 'query Catalog { products(channel: "web", first: 1) { edges { node { name } } } }'


async def _prepare(url: str, key: bytes) -> tuple[str, str, int]:
    db = Database.connect(Settings(database_url=url, secret_key=key))
    try:
        await seed_demo(db, SecretBox(key))
        async with db.sessions() as session, session.begin():
            admin = await issue_key(session, role=Role.ADMIN, channel=None, name="operations test")
            partner = await issue_key(session, role=Role.PARTNER, channel="taobao", name="operations test")
            sku = await session.scalar(select(Sku.id).where(Sku.code == "QB-10"))
        assert sku is not None
        return admin.plaintext, partner.plaintext, sku
    finally:
        await db.dispose()


def _lines(server: Server) -> list[dict[str, Any]]:
    text = server.output()
    try:
        return [orjson.loads(line) for line in text.splitlines() if line.strip()]
    except orjson.JSONDecodeError as error:
        raise AssertionError(f"a line that is not JSON:\n{text[-3000:]}") from error


async def _until_logged(server: Server, found: Any, seconds: float = 20) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    while True:
        lines = _lines(server)
        if any(found(line) for line in lines) or time.monotonic() > deadline:
            return lines
        await asyncio.sleep(0.1)


async def test_a_real_gateway_logs_json_lines_with_request_ids_and_no_contacts(tmp_path: Path) -> None:
    key = new_secret_key()
    async with migrated_database(tmp_path) as url:
        admin, partner, sku = await _prepare(url, key)
        env = {"QUANYI_WORKER": "1", "QUANYI_WORKER_POLL_SECONDS": "0.2"}
        async with running_gateway(url, key, tmp_path / "gateway.log", env=env) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                # Given a buyer who orders with a phone number and an e-mail address
                placed = await http.post("/graphql", headers={"x-request-id": "e2e-order-0001"}, json={
                    "query": PLACE, "variables": {"input": {
                        "channel": "web", "idempotencyKey": "e2e-operations-0001", "buyer": {"phone": PHONE, "email": EMAIL},
                        "lines": [{"skuId": encode_id("Sku", sku), "quantity": 1}]}}})
                assert placed.headers["x-request-id"] == "e2e-order-0001"
                order = placed.json()["data"]["placeOrder"]
                assert order["userErrors"] == []
                # And an operator who pays it, sending no request id of its own
                paid = await http.post("/graphql", headers={"authorization": f"Bearer {admin}"}, json={
                    "query": PAY, "variables": {"id": order["order"]["id"], "ref": "e2e-pay-1"}})
                assert paid.json()["data"]["payOrder"]["userErrors"] == []
                generated = paid.headers["x-request-id"]
                # And a client that puts a phone number where it does not belong
                assert (await http.get(f"/settlement/{PHONE}.csv", headers={"x-request-id": "e2e-stray-0001"})).status_code == 401

                # When the order's jobs have run
                lines = await _until_logged(server, lambda line: line.get("kind") == "deliver" and line.get("outcome") == "done")

                # Then /metrics answers operators only, and shows the order
                assert (await http.get("/metrics")).status_code == 401
                assert (await http.get("/metrics", headers={"authorization": f"Bearer {partner}"})).status_code == 403
                scraped = await http.get("/metrics", headers={"authorization": f"Bearer {admin}"})
                assert scraped.status_code == 200
                metrics = Scrape.parse(scraped.text)
                assert metrics.value("quanyi_order_transitions_total", from_status="PENDING_PAYMENT", to_status="PAID") == 1
                assert metrics.value("quanyi_graphql_requests_total", operation="Place", type="mutation", outcome="ok") == 1
                assert metrics.value("quanyi_job_runs_total", kind="fulfil", outcome="done") == 1

    # Then every line the process wrote is a JSON object (parsed above), one per request...
    by_id = {line["request_id"]: line for line in lines if line.get("logger") == "quanyi.request"}
    place = by_id["e2e-order-0001"]
    assert (place["operation"], place["operation_type"], place["outcome"], place["role"], place["status"]) == (
        "Place", "mutation", "ok", "anonymous", 200)
    assert place["duration_ms"] > 0 and place["level"] == "info" and place["ts"]
    pay = by_id[generated]
    assert (pay["operation"], pay["role"], pay["outcome"]) == ("Pay", "admin", "ok")
    assert by_id["e2e-stray-0001"]["path"] == "/settlement/138****8000.csv"
    # ...and one per job
    jobs = {(line["kind"], line["outcome"]) for line in lines if line.get("logger") == "quanyi.jobs"}
    assert {("fulfil", "done"), ("deliver", "done")} <= jobs
    # And no phone number, e-mail address or key appears in clear anywhere
    written = server.output()
    for clear in (PHONE, EMAIL, "buyer.one", admin, partner):
        assert clear not in written


def _requests_by_worker(folder: Path) -> dict[str, float]:
    """Catalog requests each worker counted, read from its own file of the shared directory."""
    counted = {}
    for path in folder.glob("counter_*.db"):
        alone = folder.parent / f"alone-{path.stem}"
        alone.mkdir(exist_ok=True)
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))
        counted[path.stem] = Scrape.parse(generate_latest(registry).decode()).value(
            "quanyi_graphql_requests_total", operation="Catalog")
        shutil.rmtree(alone)
    return counted


async def test_several_workers_answer_metrics_for_all_of_them(tmp_path: Path) -> None:
    key = new_secret_key()
    folder = tmp_path / "metrics"
    folder.mkdir()
    async with migrated_database(tmp_path) as url:
        admin, _, _ = await _prepare(url, key)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANYI_", "PROMETHEUS_"))}
        env.update(QUANYI_DATABASE_URL=url, QUANYI_SECRET_KEY=base64.urlsafe_b64encode(key).decode(),
                   QUANYI_RATE_LIMITS="0", QUANYI_WORKER="0", PROMETHEUS_MULTIPROC_DIR=str(folder))
        if TEST_REDIS_URL:
            env["QUANYI_REDIS_URL"] = TEST_REDIS_URL
        command = [sys.executable, "-m", "uvicorn", "gateway:create_app", "--factory", "--workers", "2",
                   "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
        process = start_process(command, env, tmp_path / "gateway.log")
        base = f"http://127.0.0.1:{port}"
        try:
            await _ready(base, process, tmp_path / "gateway.log")
            # Given catalog reads on fresh connections until both workers have answered some
            sent = 0
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                async def read() -> None:
                    answer = await http.post("/graphql", json={"query": CATALOG}, headers={"connection": "close"})
                    assert "errors" not in answer.json()

                while sent < 400:
                    await asyncio.gather(*(read() for _ in range(8)))
                    sent += 8
                    if len([n for n in _requests_by_worker(folder).values() if n]) == 2:
                        break
            by_worker = _requests_by_worker(folder)
            assert len([n for n in by_worker.values() if n]) == 2 and sum(by_worker.values()) == sent
            # Then whichever worker answers a scrape, it counts the requests of both
            for _ in range(6):
                async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                    scraped = await http.get("/metrics", headers={"authorization": f"Bearer {admin}",
                                                                   "connection": "close"})
                metrics = Scrape.parse(scraped.text)
                assert metrics.value("quanyi_graphql_requests_total", operation="Catalog", outcome="ok") == sent
                assert metrics.value("quanyi_db_pool_connections_limit", pool="primary") > 0
        finally:
            _stop(process)


async def _ready(base: str, process: Any, log: Path, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as client:
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            await asyncio.sleep(0.1)
