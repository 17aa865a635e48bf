"""Operators issue keys that work at once and revoke them so they stop working at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from config import Settings
from gateway import create_app
from tests.graphql.conftest import Keys
from tests.support import TEST_REDIS_URL, GraphQLClient

CREATE = """
mutation Create($input: CreateApiKeyInput!) {
  createApiKey(input: $input) { apiKey { id prefix role channel } secret userErrors { code } }
}
"""
REVOKE = "mutation Revoke($id: ID!) { revokeApiKey(id: $id) { apiKey { revokedAt } userErrors { code } } }"
OWN_CHANNEL = "{ channels { code } }"


async def _issue(gql: GraphQLClient, admin: str) -> dict:
    answer = await gql(CREATE, {"input": {"role": "PARTNER", "channel": "taobao", "name": "rotating"}}, key=admin)
    created = answer["data"]["createApiKey"]
    assert created["userErrors"] == [] and created["apiKey"]["role"] == "PARTNER"
    assert created["secret"].split("_")[1] == created["apiKey"]["prefix"]
    return created


async def test_a_new_key_works_at_once_and_a_revoked_one_is_refused_at_once(gql: GraphQLClient, keys: Keys) -> None:
    created = await _issue(gql, keys.admin)
    assert await gql(OWN_CHANNEL, key=created["secret"]) == {"data": {"channels": [{"code": "taobao"}]}}

    revoked = await gql(REVOKE, {"id": created["apiKey"]["id"]}, key=keys.admin)
    refused = await gql.post(OWN_CHANNEL, key=created["secret"])

    assert revoked["data"]["revokeApiKey"]["userErrors"] == []
    assert revoked["data"]["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    assert refused.status_code == 401


async def test_a_partner_cannot_issue_keys(gql: GraphQLClient, keys: Keys) -> None:
    answer = await gql(CREATE, {"input": {"role": "ADMIN"}}, key=keys.taobao)
    assert answer["data"] is None and answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.fixture
async def second_process(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """Another gateway on the same database and broker topics, as another worker would be."""
    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            yield GraphQLClient(client)


@pytest.mark.skipif(TEST_REDIS_URL is None, reason="processes share revocations through Redis")
async def test_a_revocation_reaches_another_process_that_had_the_key_cached(
    gql: GraphQLClient, second_process: GraphQLClient, keys: Keys
) -> None:
    created = await _issue(gql, keys.admin)
    # The other process verifies the key once and keeps it for a few seconds.
    assert (await second_process.post(OWN_CHANNEL, key=created["secret"])).status_code == 200

    await gql(REVOKE, {"id": created["apiKey"]["id"]}, key=keys.admin)

    for _ in range(100):
        if (await second_process.post(OWN_CHANNEL, key=created["secret"])).status_code == 401:
            break
        await asyncio.sleep(0.02)
    assert (await second_process.post(OWN_CHANNEL, key=created["secret"])).status_code == 401
