"""Persisted queries as Apollo's clients send them, and trusted documents that only registered ones run."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from config import Settings
from gateway import create_app
from services.core.database import Database
from tests.graphql.conftest import Keys
from tests.graphql.test_websocket import TRANSPORT_WS, connected, receive
from tests.scrape import scrape
from tests.support import without_cost

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
CHANNELS = "query Channels { channels { code } }"
PUBLIC_CHANNELS = {"data": {"channels": [{"code": "web"}, {"code": "mini"}, {"code": "h5"}]}}
REGISTER = """
mutation Register($input: RegisterTrustedDocumentsInput!) {
  registerTrustedDocuments(input: $input) { documents { sha256Hash name keyPrefix } userErrors { field code } }
}
"""
REMOVE = """
mutation Remove($input: RemoveTrustedDocumentsInput!) { removeTrustedDocuments(input: $input) { removed userErrors { code } } }
"""
KEY_IDS = "{ apiKeys { id prefix } }"


def sha(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


def persisted(digest: str, version: object = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": digest}}


async def send(
    http: httpx.AsyncClient, *, query: str | None = None, extensions: dict[str, Any] | None = None,
    variables: dict[str, Any] | None = None, key: str | None = None, method: str = "POST",
) -> tuple[int, dict[str, Any]]:
    headers = {"accept": GRAPHQL_RESPONSE_JSON}
    if key:
        headers["authorization"] = f"Bearer {key}"
    if method == "GET":
        params = {name: value for name, value in (
            ("query", query), ("extensions", json.dumps(extensions) if extensions else None),
            ("variables", json.dumps(variables) if variables else None),
        ) if value is not None}
        response = await http.get("/graphql", params=params, headers=headers)
    else:
        body = {name: value for name, value in (("query", query), ("extensions", extensions), ("variables", variables))
                if value is not None}
        response = await http.post("/graphql", json=body, headers=headers)
    return response.status_code, without_cost(response.json())


def error(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


NOT_FOUND = error("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")


@pytest.fixture
async def client_of() -> AsyncIterator[Any]:
    """`await client_of(settings)`: an HTTP client of a gateway built with those settings."""
    async with contextlib.AsyncExitStack() as stack:
        async def build(settings: Settings) -> httpx.AsyncClient:
            app = create_app(settings)
            await stack.enter_async_context(LifespanManager(app))
            transport = httpx.ASGITransport(app=app)
            return await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://quanyi.test"))

        yield build


# --- automatic persisted queries -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_an_unknown_hash_asks_for_the_text_then_the_hash_alone_is_enough(
    client_of: Any, settings: Settings, db: Database, method: str
) -> None:
    http = await client_of(settings)
    query = f"query Apq{method} {{ channels {{ code }} }}"

    first = await send(http, extensions=persisted(sha(query)), method=method)
    with_text = await send(http, query=query, extensions=persisted(sha(query)), method=method)
    hash_alone = await send(http, extensions=persisted(sha(query)), method=method)

    assert first == (400, NOT_FOUND)
    assert with_text == hash_alone == (200, PUBLIC_CHANNELS)


async def test_the_hash_may_be_written_in_capitals(client_of: Any, settings: Settings, db: Database) -> None:
    http = await client_of(settings)
    query = "query Capitals { channels { code } }"
    await send(http, query=query, extensions=persisted(sha(query)))

    assert await send(http, extensions=persisted(sha(query).upper())) == (200, PUBLIC_CHANNELS)


async def test_a_text_under_another_documents_hash_is_refused_and_not_kept(
    client_of: Any, settings: Settings, db: Database
) -> None:
    http = await client_of(settings)
    honest = "query Honest { channels { code } }"
    forged = "query Forged { channels { code name } }"

    refused = await send(http, query=forged, extensions=persisted(sha(honest)))

    assert refused == (400, error("provided sha does not match query", "BAD_USER_INPUT"))
    assert await send(http, extensions=persisted(sha(honest))) == (400, NOT_FOUND)


@pytest.mark.parametrize(("extensions", "expected"), [
    (persisted("a" * 65), error("extensions.persistedQuery.sha256Hash: the SHA-256 of the query, 64 hexadecimal digits", "BAD_USER_INPUT")),
    (persisted("a" * 100_000), error("extensions.persistedQuery.sha256Hash: the SHA-256 of the query, 64 hexadecimal digits", "BAD_USER_INPUT")),
    (persisted("g" * 64), error("extensions.persistedQuery.sha256Hash: the SHA-256 of the query, 64 hexadecimal digits", "BAD_USER_INPUT")),
    (persisted("../" * 21 + "a"), error("extensions.persistedQuery.sha256Hash: the SHA-256 of the query, 64 hexadecimal digits", "BAD_USER_INPUT")),
    (persisted(12345), error("extensions.persistedQuery.sha256Hash: the SHA-256 of the query, 64 hexadecimal digits", "BAD_USER_INPUT")),
    (persisted("a" * 64, version=2), error("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED")),
    (persisted("a" * 64, version="1"), error("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED")),
    (persisted("a" * 64, version=True), error("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED")),
    ({"persistedQuery": "a" * 64}, error("extensions.persistedQuery must be an object", "BAD_USER_INPUT")),
])
async def test_a_malformed_persisted_query_is_a_clear_error(
    http: httpx.AsyncClient, extensions: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert await send(http, extensions=extensions) == (400, expected)


async def test_neither_a_text_nor_a_hash_is_no_query(http: httpx.AsyncClient) -> None:
    assert await send(http, extensions={"other": 1}) == (400, error("the request has no query", "BAD_USER_INPUT"))


async def test_a_flood_of_new_documents_keeps_the_store_bounded(client_of: Any, settings: Settings, db: Database) -> None:
    http = await client_of(replace(settings, persisted_queries=3, broker_prefix=settings.broker_prefix + "flood:"))
    documents = [f"query Flood{n} {{ channels {{ code }} }}" for n in range(6)]
    for document in documents:
        assert (await send(http, query=document, extensions=persisted(sha(document))))[0] == 200

    kept = [(await send(http, extensions=persisted(sha(document))))[0] == 200 for document in documents]

    assert kept == [False, False, False, True, True, True]


async def test_a_document_that_does_not_validate_or_is_too_large_is_not_kept(
    client_of: Any, settings: Settings, db: Database
) -> None:
    http = await client_of(replace(settings, persisted_query_max_bytes=200, broker_prefix=settings.broker_prefix + "large:"))
    invalid = "query Invalid { channels { nope } }"
    large = "query Large { channels { code } }" + " " * 300

    assert (await send(http, query=invalid, extensions=persisted(sha(invalid))))[1]["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert await send(http, query=large, extensions=persisted(sha(large))) == (200, PUBLIC_CHANNELS)
    assert await send(http, extensions=persisted(sha(invalid))) == (400, NOT_FOUND)
    assert await send(http, extensions=persisted(sha(large))) == (400, NOT_FOUND)


# --- trusted documents -------------------------------------------------------------------------


async def _key_id(http: httpx.AsyncClient, admin: str, key: str) -> str:
    _, answer = await send(http, query=KEY_IDS, key=admin)
    return next(k["id"] for k in answer["data"]["apiKeys"] if k["prefix"] == key.split("_")[1])


async def _register(http: httpx.AsyncClient, admin: str, documents: list[str], api_key_id: str | None = None) -> dict[str, Any]:
    _, answer = await send(http, query=REGISTER, variables={"input": {"documents": documents, "apiKeyId": api_key_id}}, key=admin)
    return answer["data"]["registerTrustedDocuments"]


NOT_TRUSTED = error("only trusted documents run here: this one is not registered", "DOCUMENT_NOT_TRUSTED")


@pytest.fixture
async def enforcing(client_of: Any, settings: Settings, db: Database) -> httpx.AsyncClient:
    return await client_of(replace(settings, trusted_documents="enforce"))


async def test_enforced_an_ad_hoc_document_is_refused_before_it_is_even_parsed(enforcing: httpx.AsyncClient) -> None:
    assert await send(enforcing, query="query AdHoc { channels { code } }") == (400, NOT_TRUSTED)
    assert await send(enforcing, query="{ this is not graphql") == (400, NOT_TRUSTED)
    assert await send(enforcing, query="query AdHoc { channels { code } }", method="GET") == (400, NOT_TRUSTED)


async def test_enforced_a_global_document_runs_for_anyone_by_text_or_hash(enforcing: httpx.AsyncClient, keys: Keys) -> None:
    query = "query StorefrontChannels { channels { code } }"
    registered = await _register(enforcing, keys.admin, [query])

    assert registered == {"documents": [{"sha256Hash": sha(query), "name": "StorefrontChannels", "keyPrefix": None}],
                          "userErrors": []}
    assert await send(enforcing, query=query) == (200, PUBLIC_CHANNELS)
    assert await send(enforcing, extensions=persisted(sha(query))) == (200, PUBLIC_CHANNELS)
    assert await send(enforcing, query=query + " ") == (400, NOT_TRUSTED)  # another text is another document


async def test_enforced_a_partners_document_runs_for_that_key_alone(enforcing: httpx.AsyncClient, keys: Keys) -> None:
    query = "query PartnerChannels { channels { code } }"
    await _register(enforcing, keys.admin, [query], await _key_id(enforcing, keys.admin, keys.taobao))

    assert await send(enforcing, query=query, key=keys.taobao) == (200, {"data": {"channels": [{"code": "taobao"}]}})
    assert await send(enforcing, extensions=persisted(sha(query)), key=keys.taobao) == (200, {"data": {"channels": [{"code": "taobao"}]}})
    assert await send(enforcing, query=query, key=keys.b2b) == (400, NOT_TRUSTED)
    assert await send(enforcing, query=query) == (400, NOT_TRUSTED)
    assert await send(enforcing, extensions=persisted(sha(query)), key=keys.b2b) == (400, NOT_FOUND)


async def test_enforced_a_persisted_query_cannot_smuggle_a_document_in(enforcing: httpx.AsyncClient) -> None:
    query = "query Smuggled { channels { code } }"

    assert await send(enforcing, query=query, extensions=persisted(sha(query))) == (400, NOT_TRUSTED)
    assert await send(enforcing, extensions=persisted(sha(query))) == (400, NOT_FOUND)


async def test_enforced_operators_run_their_own_documents(enforcing: httpx.AsyncClient, keys: Keys) -> None:
    status, answer = await send(enforcing, query="query Console { channels { code } }", key=keys.admin)
    assert status == 200 and "errors" not in answer


async def test_a_removed_document_is_refused_again(enforcing: httpx.AsyncClient, keys: Keys) -> None:
    query = "query Withdrawn { channels { code } }"
    await _register(enforcing, keys.admin, [query])
    assert (await send(enforcing, query=query))[0] == 200

    _, removed = await send(enforcing, query=REMOVE, variables={"input": {"sha256Hashes": [sha(query)]}}, key=keys.admin)

    assert removed == {"data": {"removeTrustedDocuments": {"removed": 1, "userErrors": []}}}
    assert await send(enforcing, query=query) == (400, NOT_TRUSTED)


async def test_enforced_over_websocket_an_ad_hoc_document_is_an_error_with_its_code(
    client_of: Any, settings: Settings, db: Database
) -> None:
    app = create_app(replace(settings, trusted_documents="enforce"))
    async with LifespanManager(app), connected(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": "query AdHoc { channels { code } }"}})

        assert await receive(ws) == {"id": "1", "type": "error", "payload": NOT_TRUSTED["errors"]}


async def test_a_document_that_cannot_run_is_not_registered(enforcing: httpx.AsyncClient, keys: Keys) -> None:
    good = "query Good { channels { code } }"
    registered = await _register(enforcing, keys.admin, [good, "query Bad { channels { nope } }", "{ broken"])

    assert registered == {"documents": [], "userErrors": [
        {"field": "documents.1", "code": "INVALID_DOCUMENT"}, {"field": "documents.2", "code": "INVALID_DOCUMENT"},
    ]}
    assert await send(enforcing, query=good) == (400, NOT_TRUSTED)


async def test_only_operators_register_documents(http: httpx.AsyncClient, keys: Keys) -> None:
    _, answer = await send(http, query=REGISTER, variables={"input": {"documents": [CHANNELS]}}, key=keys.taobao)

    assert answer["data"] is None and answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_logged_an_ad_hoc_document_runs_and_is_counted(client_of: Any, settings: Settings, db: Database, keys: Keys) -> None:
    http = await client_of(replace(settings, trusted_documents="log"))
    before = await scrape(http, keys.admin)

    assert await send(http, query="query Logged { channels { code } }") == (200, PUBLIC_CHANNELS)

    after = await scrape(http, keys.admin)
    labels = {"role": "anonymous", "action": "logged"}
    assert after.value("quanyi_untrusted_documents_total", **labels) - before.value("quanyi_untrusted_documents_total", **labels) == 1


# --- the schema is no map for the public -------------------------------------------------------

INTROSPECTION = '{ __type(name: "Sku") { fields { name } } }'
MISSPELT = "{ chanels { code } }"


async def test_the_public_cannot_introspect_in_production(http: httpx.AsyncClient, keys: Keys) -> None:
    for key in (None, keys.web):
        status, answer = await send(http, query=INTROSPECTION, key=key)
        assert (status, {e["extensions"]["code"] for e in answer["errors"]}) == (400, {"GRAPHQL_VALIDATION_FAILED"})
        assert "introspection" in answer["errors"][0]["message"]


async def test_partners_and_operators_introspect(http: httpx.AsyncClient, keys: Keys) -> None:
    for key in (keys.taobao, keys.admin):
        status, answer = await send(http, query=INTROSPECTION, key=key)
        assert status == 200 and "supplierCost" in {f["name"] for f in answer["data"]["__type"]["fields"]}


async def test_the_public_is_not_told_what_a_misspelt_field_might_be(http: httpx.AsyncClient, keys: Keys) -> None:
    assert (await send(http, query=MISSPELT))[1] == error_at("Cannot query field 'chanels' on type 'Query'.")
    assert (await send(http, query=MISSPELT, key=keys.taobao))[1] == error_at(
        "Cannot query field 'chanels' on type 'Query'. Did you mean 'channels'?")


async def test_the_public_is_not_told_an_enums_values_either(http: httpx.AsyncClient) -> None:
    query = 'query Kind($kind: SkuKind) { products(channel: "web", first: 1, filter: { kind: $kind }) { edges { cursor } } }'
    _, answer = await send(http, query=query, variables={"kind": "CARD_COD"})

    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "Did you mean" not in answer["errors"][0]["message"]


async def test_debugging_shows_the_schema_to_everyone(client_of: Any, settings: Settings, db: Database) -> None:
    http = await client_of(replace(settings, public_introspection=True))

    status, answer = await send(http, query=INTROSPECTION)
    assert status == 200 and answer["data"]["__type"]["fields"]


async def test_the_public_cannot_introspect_over_websocket(app: Any) -> None:
    async with connected(app, TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert await receive(ws) == {"type": "connection_ack"}
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": INTROSPECTION}})

        answer = await receive(ws)
        assert (answer["type"], answer["payload"][0]["extensions"]["code"]) == ("error", "GRAPHQL_VALIDATION_FAILED")


def error_at(message: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "locations": [{"line": 1, "column": 3}],
                        "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}]}
