"""Rotating QUANYI_SECRET_KEY without downtime, on real gateway processes.

The shop's codes and its supplier's signing secret are sealed under key A. Then, as
docs/operations.md says: gateways that know both keys serve side by side, one still sealing
with A (A current, B old), one already with B (B current, A old); each opens what the other
sealed, and an import under B still finds a duplicate of a code sealed under A.
`quanyi reseal-secrets` then re-seals everything under B while the gateway serves, and a
gateway that knows B alone reveals every code bought before, during and after.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from config import Settings
from domain.access import Role
from models import CardCode, Order, Sku, Supplier
from schema.relay import encode_id
from services.access.keys import issue_key
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from services.fulfilment.supplier_registry import seal_secret
from tests.e2e.server import PROJECT, running_gateway
from tests.e2e.shop import migrated_database
from tests.support import new_secret_key, without_cost

pytestmark = pytest.mark.e2e

PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } userErrors { code } } }
"""
PAY = "mutation Pay($id: ID!, $ref: String!) { payOrder(orderId: $id, paymentReference: $ref) { userErrors { code } } }"
REVEAL = "query Reveal($id: ID!) { order(id: $id) { status lines { codes(reveal: true) { secret } } } }"
IMPORT = """
mutation Import($sku: ID!, $codes: [CardCodeInput!]!) { importCardCodes(skuId: $sku, codes: $codes) { imported duplicates userErrors { code } } }
"""
ENV = {"QUANYI_WORKER": "1", "QUANYI_WORKER_POLL_SECONDS": "0.2"}


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


async def _gql(http: httpx.AsyncClient, query: str, variables: dict[str, Any], admin: str | None = None) -> Any:
    headers = {"authorization": f"Bearer {admin}"} if admin else {}
    answer = without_cost((await http.post("/graphql", json={"query": query, "variables": variables}, headers=headers)).json())
    assert "errors" not in answer, answer
    return answer["data"]


async def _buy(http: httpx.AsyncClient, admin: str, sku: int, n: int) -> str:
    placed = (await _gql(http, PLACE, {"input": {
        "channel": "web", "idempotencyKey": f"key-rotation-{n:04d}-00000000", "buyer": {"phone": "13800138000"},
        "lines": [{"skuId": encode_id("Sku", sku), "quantity": 1}]}}))["placeOrder"]
    assert placed["userErrors"] == []
    paid = await _gql(http, PAY, {"id": placed["order"]["id"], "ref": f"rotation-{n}"}, admin)
    assert paid["payOrder"]["userErrors"] == []
    return str(placed["order"]["id"])


async def _revealed(http: httpx.AsyncClient, admin: str, order: str) -> str:
    deadline = time.monotonic() + 20
    while True:
        found = (await _gql(http, REVEAL, {"id": order}, admin))["order"]
        if found["status"] == "DELIVERED" or time.monotonic() > deadline:
            assert found["status"] == "DELIVERED", found
            return str(found["lines"][0]["codes"][0]["secret"])
        await asyncio.sleep(0.2)


async def test_the_secret_key_is_rotated_while_gateways_serve(tmp_path: Path) -> None:
    old, new = new_secret_key(), new_secret_key()
    async with asyncio.timeout(120), migrated_database(tmp_path) as url:
        db = Database.connect(Settings(database_url=url, secret_key=old))
        try:
            under_old = SecretBox(old)
            await seed_demo(db, under_old)
            async with db.sessions() as session, session.begin():
                admin = (await issue_key(session, role=Role.ADMIN, channel=None, name="rotation test")).plaintext
                sku = await session.scalar(select(Sku.id).where(Sku.code == "QB-10"))
                assert sku is not None
                await session.execute(update(Supplier).where(Supplier.code == "sim-fast").values(
                    adapter="http", base_url="http://127.0.0.1:9", secret_ciphertext=seal_secret(under_old, "sim-fast", "signing-1")))
                sealed = await session.scalar(select(CardCode.secret_ciphertext).where(
                    CardCode.sku_id == sku, CardCode.status == "AVAILABLE").order_by(CardCode.id.desc()).limit(1))
            in_pool = under_old.open(sealed, context=str(sku).encode())

            # Given gateways that know both keys serving side by side, one still sealing with the
            # old key (step 1 of the rotation), one with the new key (step 2)
            ring_old = {**ENV, "QUANYI_SECRET_KEYS_OLD": _b64(new)}
            ring_new = {**ENV, "QUANYI_SECRET_KEYS_OLD": _b64(old)}
            async with contextlib.AsyncExitStack() as stack:
                still_old, renewed = await asyncio.gather(  # started together
                    stack.enter_async_context(running_gateway(url, old, tmp_path / "b.log", env=ring_old)),
                    stack.enter_async_context(running_gateway(url, new, tmp_path / "c.log", env=ring_new)),
                )
                on_old = await stack.enter_async_context(httpx.AsyncClient(base_url=still_old.url, timeout=30))
                on_new = await stack.enter_async_context(httpx.AsyncClient(base_url=renewed.url, timeout=30))
                # Then a code sealed under the old key is revealed by either
                first = await _buy(on_old, admin, sku, 1)
                first_secret = await _revealed(on_old, admin, first)
                assert await _revealed(on_new, admin, first) == first_secret
                imported = (await _gql(on_new, IMPORT, {"sku": encode_id("Sku", sku), "codes": [
                    {"secret": "ROTATED-CODE-0001"}, {"secret": in_pool}]}, admin))["importCardCodes"]
                # And an import under the new key finds a code the pool holds under the old one
                assert (imported["imported"], imported["duplicates"]) == (1, 1)
                second = await _buy(on_old, admin, sku, 2)
                second_secret = await _revealed(on_new, admin, second)

                # When every secret is re-sealed under the new key, while a gateway serves
                environment = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
                environment.update(QUANYI_DATABASE_URL=url, QUANYI_SECRET_KEY=_b64(new), QUANYI_SECRET_KEYS_OLD=_b64(old))
                done = await asyncio.to_thread(subprocess.run, [
                    sys.executable, "-c", "from gateway import main; main()", "reseal-secrets", "--batch", "50",
                ], cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=60)
                assert done.returncode == 0, done.stdout + done.stderr
                assert "0 left under old keys" in done.stdout
                third = await _buy(on_new, admin, sku, 3)
                third_secret = await _revealed(on_new, admin, third)

            # Then a gateway that knows the new key alone reveals every code sold
            async with running_gateway(url, new, tmp_path / "d.log", env=ENV) as gateway, \
                    httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
                assert [await _revealed(http, admin, order) for order in (first, second, third)] == [
                    first_secret, second_secret, third_secret]
            async with db.fresh_sessions() as session:
                sealed_codes = list(await session.scalars(select(CardCode.secret_ciphertext)))
                supplier_secret = await session.scalar(select(Supplier.secret_ciphertext).where(Supplier.code == "sim-fast"))
                numbers = list(await session.scalars(select(Order.number)))
            under_new = SecretBox(new)
            assert all(under_new.current(code) for code in sealed_codes) and len(numbers) == 3
            assert under_new.open(supplier_secret, context=b"supplier:sim-fast") == "signing-1"
        finally:
            await db.dispose()
