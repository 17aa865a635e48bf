"""A supplier's connection changed through the API applies at once, in every process: each
drops the adapter it built and builds it again from the row, with no restart."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from config import Settings
from models import Supplier
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.fulfilment.supplier_registry import SupplierRegistry
from tests.fulfilment.fakes import FakeSupplier
from tests.graphql.catalog_admin_support import unique
from tests.graphql.conftest import Keys
from tests.support import GraphQLClient

CREATE = """
mutation($code: String!) { createSupplier(input: { code: $code, name: "直充供应商", baseUrl: "https://one.example/api",
    secret: "first-shared-secret-000", timeoutSeconds: 3 }) { supplier { id version } userErrors { field code } } }
"""
UPDATE = """
mutation($id: ID!, $version: Int!) { updateSupplier(input: { id: $id, version: $version, baseUrl: "https://two.example/api",
    secret: "second-shared-secret-00" }) { supplier { baseUrl version secretSet } userErrors { field code } } }
"""


async def test_another_process_rebuilds_the_adapter_when_an_operator_changes_the_supplier(
    app: Any, settings: Settings, db: Database, gql: GraphQLClient, keys: Keys
) -> None:
    built: list[tuple[str | None, str]] = []

    def factory(row: Supplier, secret: str) -> FakeSupplier:
        built.append((row.base_url, secret))
        return FakeSupplier(row.code)

    # Another gateway process: its own registry, following the same broker.
    other = SupplierRegistry(db, SecretBox(settings.secret_key), {"http": factory})
    following = asyncio.create_task(other.follow(app.state.broker))
    try:
        code = unique("sup")
        created = (await gql(CREATE, {"code": code}, key=keys.admin))["data"]["createSupplier"]
        assert created["userErrors"] == []
        found = await other.by_code(code)
        assert found is not None and built == [("https://one.example/api", "first-shared-secret-000")]

        updated = (await gql(UPDATE, {"id": created["supplier"]["id"], "version": created["supplier"]["version"]},
                             key=keys.admin))["data"]["updateSupplier"]
        assert updated == {"supplier": {"baseUrl": "https://two.example/api", "version": 3, "secretSet": True},
                           "userErrors": []}

        for _ in range(200):  # the event arrives asynchronously, as from another process
            await other.adapter(found[0])
            if len(built) > 1:
                break
            await asyncio.sleep(0.01)
        assert built[1:] == [("https://two.example/api", "second-shared-secret-00")]
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await other.close()


async def test_a_stale_version_changes_no_connection(gql: GraphQLClient, keys: Keys) -> None:
    created = (await gql(CREATE, {"code": unique("sup")}, key=keys.admin))["data"]["createSupplier"]
    stale = (await gql(UPDATE, {"id": created["supplier"]["id"], "version": 1}, key=keys.admin))["data"]["updateSupplier"]
    assert stale == {"supplier": None, "userErrors": [{"field": "version", "code": "CONFLICT"}]}
