"""Quanyi as an Apollo Federation v2 subgraph: composed with a second subgraph by Apollo's own
composition library, served through Apollo's gateway, and queried across both; entities are
resolved with the caller's own rights."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from config import Settings
from domain.access import Role
from services.access.keys import issue_key
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from tests.e2e.server import PROJECT, Server, _stop, free_port, running_gateway, start_process
from tests.e2e.shop import migrated_database
from tests.support import new_secret_key

pytestmark = pytest.mark.e2e

FEDERATION = PROJECT / "tests" / "federation"
PRODUCTS = 'query { products(channel: "web", first: 2) { edges { node { id name } } } }'
ENTITIES = """
query Entities($representations: [_Any!]!) {
  _entities(representations: $representations) { ... on Product { id name } ... on Order { id number } ... on Sku { id code } }
}
"""


@dataclass(frozen=True)
class Graph:
    quanyi: Server
    reviews: str
    admin: str
    taobao: str
    products: list[dict[str, str]]
    web_order: str


def npm_packages() -> None:
    """Apollo's composition, gateway and server, installed from the lock file once per checkout."""
    if (FEDERATION / "node_modules" / "@apollo" / "composition").is_dir():
        return
    npm = shutil.which("npm")
    assert npm is not None, "the federation test needs Node.js and npm (apt-get install nodejs npm)"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=FEDERATION, check=True, capture_output=True, timeout=900)


async def _prepare(url: str, key: bytes) -> tuple[str, str]:
    db = Database.connect(Settings(database_url=url, secret_key=key))
    try:
        await seed_demo(db, SecretBox(key))
        async with db.sessions() as session, session.begin():
            admin = await issue_key(session, role=Role.ADMIN, channel=None, name="federation test")
            taobao = await issue_key(session, role=Role.PARTNER, channel="taobao", name="federation test")
        return admin.plaintext, taobao.plaintext
    finally:
        await db.dispose()


async def _post(url: str, query: str, variables: dict[str, Any] | None = None, key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    return answer.json()


@pytest.fixture(scope="module")
async def graph(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Graph]:
    await asyncio.to_thread(npm_packages)
    folder = tmp_path_factory.mktemp("federation")
    key = new_secret_key()
    async with migrated_database(folder) as url:
        admin, taobao = await _prepare(url, key)
        env = {"QUANYI_FEDERATION": "1"}
        async with running_gateway(url, key, folder / "quanyi.log", env=env, startup_seconds=90) as quanyi:
            products = [e["node"] for e in (await _post(quanyi.url, PRODUCTS))["data"]["products"]["edges"]]
            skus = await _post(quanyi.url, 'query { products(channel: "web", first: 1) { edges { node { skus { id } } } } }')
            sku = skus["data"]["products"]["edges"][0]["node"]["skus"][0]["id"]
            placed = await _post(quanyi.url, """mutation P($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id } } }""", {
                "input": {"channel": "web", "idempotencyKey": "federation-order-0001", "buyer": {"phone": "13800138000"},
                          "lines": [{"skuId": sku, "quantity": 1}]},
            })
            port = free_port()
            environment = {**os.environ, "QUANYI_REVIEWED": ",".join(p["id"] for p in products)}
            process = start_process(
                [sys.executable, "-m", "uvicorn", "tests.federation.reviews:app", "--port", str(port), "--log-level", "warning"],
                environment, folder / "reviews.log",
            )
            try:
                reviews = f"http://127.0.0.1:{port}/graphql"
                await _until_up(reviews)
                yield Graph(quanyi, reviews, admin, taobao, products, placed["data"]["placeOrder"]["order"]["id"])
            finally:
                _stop(process)


async def _until_up(url: str) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(150):
            try:
                await client.post(url, json={"query": "{ __typename }"})
                return
            except httpx.TransportError:
                await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


async def across(graph: Graph, queries: list[str], *, key: str | None) -> dict[str, Any]:
    """The queries through Apollo's gateway over both subgraphs."""
    node = shutil.which("node")
    assert node is not None, "the federation test needs Node.js"
    given = json.dumps({"authorization": f"Bearer {key}" if key else None, "queries": [{"query": q} for q in queries]})
    process = await asyncio.create_subprocess_exec(
        node, str(FEDERATION / "supergraph.mjs"), f"{graph.quanyi.url}/graphql", graph.reviews, cwd=FEDERATION,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(given.encode()), timeout=180)
    assert process.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


async def test_the_subgraphs_compose_and_a_query_crosses_both_ways(graph: Graph) -> None:
    found = await across(graph, [
        'query { products(channel: "web", first: 2) { edges { node { id name reviews { stars } } } } }',
        "query { topReviews { stars product { id name } } }",
    ], key=graph.admin)

    assert "compositionErrors" not in found, found
    from_quanyi, from_reviews = found["answers"]
    assert from_quanyi["data"]["products"]["edges"] == [
        {"node": {**product, "reviews": [{"stars": 5}, {"stars": 4}]}} for product in graph.products
    ]
    assert from_reviews["data"]["topReviews"] == [{"stars": 5, "product": product} for product in graph.products]


async def test_entities_are_resolved_with_the_callers_rights(graph: Graph) -> None:
    order = [{"__typename": "Order", "id": graph.web_order}]
    product = [{"__typename": "Product", "id": graph.products[0]["id"]}]
    mislabelled = [{"__typename": "Sku", "id": graph.products[0]["id"]}]

    operator = await _post(graph.quanyi.url, ENTITIES, {"representations": order}, key=graph.admin)
    other_partner = await _post(graph.quanyi.url, ENTITIES, {"representations": order}, key=graph.taobao)
    anonymous = await _post(graph.quanyi.url, ENTITIES, {"representations": order})
    public = await _post(graph.quanyi.url, ENTITIES, {"representations": product})
    wrong_type = await _post(graph.quanyi.url, ENTITIES, {"representations": mislabelled}, key=graph.admin)

    assert operator["data"]["_entities"][0]["id"] == graph.web_order
    assert other_partner["data"]["_entities"] == [None]
    assert anonymous["data"]["_entities"] == [None]
    assert public["data"]["_entities"] == [graph.products[0]]
    assert wrong_type["data"]["_entities"] == [None]


async def test_the_subgraph_schema_is_for_keys_as_introspection_is(graph: Graph) -> None:
    anonymous = await _post(graph.quanyi.url, "{ _service { sdl } }")
    partner = await _post(graph.quanyi.url, "{ _service { sdl } }", key=graph.taobao)

    assert anonymous["errors"][0]["extensions"]["code"] == "FORBIDDEN" and "data" not in anonymous
    assert '@key(fields: "id"' in partner["data"]["_service"]["sdl"]
