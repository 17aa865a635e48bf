"""placeOrder compiled past graphql-core's executor answers byte for byte as graphql-core does.

Two gateways on one database: the shop's own, which compiles placeOrder documents
(transport/compiled_mutation.py), and one with QUANYI_COMPILED_MUTATIONS=0, which runs every
document through graphql-core. An order placed through one is replayed (same key) through
both, so both answer about the same order; refusals and errors are asked of both alike.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest
from asgi_lifespan import LifespanManager
from graphql import get_operation_ast, parse

from domain.catalog import CodeStatus
from gateway import create_app
from models import Sku
from tests.e2e.shop import StockedSku, order_input
from tests.graphql.selling_shop import SellingShop, open_selling_shop
from tests.services import catalog_rows as rows
from tests.support import GraphQLClient, StatementCounter

PLAIN = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number status } accessToken userErrors { field code } }
}
"""
ALIASED = """
mutation Place($input: PlaceOrderInput!) {
  __typename
  bought: placeOrder(input: $input) {
    __typename
    token: accessToken
    order { __typename ref: number id status channel total { amount currency } buyer { phone email } }
    problems: userErrors { __typename field message code }
  }
}
"""
FRAGMENTS = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { ...Payload ... on PlaceOrderPayload { order { ...OrderFields status } } }
}
fragment Payload on PlaceOrderPayload { userErrors { ...Problem } order { number } }
fragment Problem on UserError { code field message }
fragment OrderFields on Order { id expiresAt total { amount } }
"""
CONDITIONAL = """
mutation Place($input: PlaceOrderInput!, $withOrder: Boolean!, $terse: Boolean = false) {
  placeOrder(input: $input) {
    order @include(if: $withOrder) { number status @skip(if: $terse) }
    accessToken @skip(if: $terse)
    userErrors { code }
  }
}
"""
NESTED = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { number lines { id quantity unitPrice { amount currency } total { amount } presaleQuantity }
            events { actor fromStatus toStatus reason } }
    userErrors { field code }
  }
}
"""
DOCUMENTS = {"plain": PLAIN, "aliased": ALIASED, "fragments": FRAGMENTS, "conditional": CONDITIONAL, "nested": NESTED}

_keys = itertools.count()
_phones = itertools.count(13600000000)


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SellingShop]:
    async with open_selling_shop(tmp_path_factory.mktemp("compiled-place-order")) as opened:
        yield opened


@pytest.fixture(scope="module")
async def interpreted(shop: SellingShop) -> AsyncIterator[GraphQLClient]:
    """A second gateway on the shop's database that runs placeOrder through graphql-core."""
    app = create_app(replace(shop.settings, compiled_mutations=False))
    async with LifespanManager(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://quanyi.test"
    ) as http:
        yield GraphQLClient(http)


def compiles(shop: SellingShop, query: str) -> bool:
    document = parse(query)
    operation = get_operation_ast(document)
    assert operation is not None
    return shop.app.state.compiled_mutations.plan(query, document, operation) is not None


def variables(sku: StockedSku, *, key: str | None = None, **extra: Any) -> dict[str, Any]:
    given = order_input((sku, 1), buyer={"phone": str(next(_phones))})
    given["idempotencyKey"] = key or f"compiled-place-{next(_keys):08d}"
    return {"input": given, **extra}


async def both(shop: SellingShop, interpreted: GraphQLClient, query: str, given: dict[str, Any],
               key: str | None = None) -> tuple[bytes, bytes]:
    compiled = await shop.client.post(query, given, key=key)
    other = await interpreted.post(query, given, key=key)
    assert compiled.status_code == other.status_code
    return compiled.content, other.content


@pytest.mark.parametrize("name", list(DOCUMENTS))
async def test_a_placed_order_is_answered_as_graphql_core_answers_it(
    shop: SellingShop, interpreted: GraphQLClient, name: str
) -> None:
    query = DOCUMENTS[name]
    sku = await shop.sealed_codes(2)
    given = variables(sku, withOrder=True)
    assert compiles(shop, query)

    first = await shop.client.post(query, given)
    replayed, replayed_by_graphql_core = await both(shop, interpreted, query, given)

    assert orjson.loads(first.content)["data"] is not None
    assert replayed == replayed_by_graphql_core
    assert first.content == replayed  # a retry answers as the first try did


@pytest.mark.parametrize("name", list(DOCUMENTS))
async def test_refusals_are_answered_as_graphql_core_answers_them(
    shop: SellingShop, interpreted: GraphQLClient, name: str
) -> None:
    sku = await shop.sealed_codes(1)
    await shop.gql(PLAIN, variables(sku))  # sold
    cases = [
        variables(sku, withOrder=True),  # out of stock: the gate, or the database
        variables(sku, withOrder=False, terse=True),
        {"input": {**variables(sku)["input"], "buyer": {"phone": "12345"}}, "withOrder": True},  # not a phone
        {"input": {**variables(sku)["input"], "lines": [{"skuId": sku.gid, "quantity": 0}]}, "withOrder": True},
    ]
    for given in cases:
        compiled, other = await both(shop, interpreted, DOCUMENTS[name], given)
        assert compiled == other
        assert b'"userErrors"' in compiled or b'"problems"' in compiled or b'"placeOrder":{}' in compiled


async def test_errors_null_the_payload_as_graphql_core_does(shop: SellingShop, interpreted: GraphQLClient) -> None:
    sku = await shop.sealed_codes(1)
    unknown_channel = {"input": {**variables(sku)["input"], "channel": "nowhere"}}
    short_key = {"input": {**variables(sku)["input"], "idempotencyKey": "k1"}}
    malformed_sku = {"input": {**variables(sku)["input"], "lines": [{"skuId": "not-an-id", "quantity": 1}]}}
    for query in (PLAIN, ALIASED):
        for given in (unknown_channel, short_key, malformed_sku):
            compiled, other = await both(shop, interpreted, query, given)
            assert compiled == other
            assert orjson.loads(compiled)["data"] is None

    # Another channel's key may not order here: FORBIDDEN, the same way.
    compiled, other = await both(shop, interpreted, ALIASED, variables(sku), key=shop.keys.taobao)
    assert compiled == other
    assert orjson.loads(compiled)["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_variables_graphql_core_must_coerce_are_left_to_it(shop: SellingShop, interpreted: GraphQLClient) -> None:
    sku = await shop.sealed_codes(3)
    odd = [
        {"input": {**variables(sku)["input"], "lines": {"skuId": sku.gid, "quantity": 1}}},  # one line, not a list
        {"input": {**variables(sku)["input"], "extra": 1}},  # a field the input does not have
        {"input": {**variables(sku)["input"], "lines": [{"skuId": sku.gid, "quantity": 1.5}]}},
        {"input": {**variables(sku)["input"], "lines": [{"skuId": sku.gid, "quantity": True}]}},
        {"input": None},
        {},
        {**variables(sku), "withOrder": None},  # `if:` must not be null
        {**variables(sku), "withOrder": True, "terse": None},  # nor be a nullable variable's null
    ]
    for given in odd:
        query = CONDITIONAL if "withOrder" in given else PLAIN
        compiled, other = await both(shop, interpreted, query, given)
        replaced = orjson.loads(compiled)
        if replaced.get("data") and replaced["data"]["placeOrder"]["order"] is not None:
            # A list of one placed an order through graphql-core; its replay answers alike.
            compiled, other = await both(shop, interpreted, query, given)
        assert compiled == other


def test_documents_past_what_can_be_shaped_are_not_compiled(shop: SellingShop) -> None:
    literal = 'mutation { placeOrder(input: {channel: "web", idempotencyKey: "k", lines: [], buyer: {}}) { userErrors { code } } }'
    twice = """mutation P($a: PlaceOrderInput!, $b: PlaceOrderInput!) {
      one: placeOrder(input: $a) { userErrors { code } } two: placeOrder(input: $b) { userErrors { code } } }"""
    verdict = "mutation P($i: PlaceOrderInput!) { placeOrder(input: $i) { order { riskVerdict { decision } } } }"
    codes = "mutation P($i: PlaceOrderInput!) { placeOrder(input: $i) { order { lines { codes { secret } } } } }"
    other = 'mutation { cancelOrder(orderId: "T3JkZXI6MQ==") { userErrors { code } } }'
    query = "query { channels { code } }"
    for document in (literal, twice, verdict, codes, other, query):
        assert not compiles(shop, document), document


async def test_a_sold_out_sku_is_refused_by_the_compiled_path_without_a_statement(
    shop: SellingShop, interpreted: GraphQLClient
) -> None:
    counter = StatementCounter()
    database = shop.app.state.db
    counter.attach(database.engine)
    if database.read_engine is not database.engine:
        counter.attach(database.read_engine)
    if database.driver is not None:
        counter.attach_driver(database.driver)
    sku = await shop.sealed_codes(1)
    await shop.gql(PLAIN, variables(sku))
    assert (await shop.gql(PLAIN, variables(sku)))["data"]["placeOrder"]["userErrors"][0]["code"] == "OUT_OF_STOCK"

    late, count = await counter.measure(shop.gql(ALIASED, variables(sku)))

    assert late["data"]["bought"]["problems"][0]["code"] == "OUT_OF_STOCK"
    # SQLite looks the key up first (one statement); PostgreSQL leaves keys to the order's insert.
    assert count == (0 if database.driver is not None else 1)


async def test_stock_that_comes_back_unannounced_sells_through_the_compiled_path_within_a_second(
    shop: SellingShop,
) -> None:
    sku = await shop.sealed_codes(1)
    await shop.gql(PLAIN, variables(sku))
    assert (await shop.gql(PLAIN, variables(sku)))["data"]["placeOrder"]["userErrors"][0]["code"] == "OUT_OF_STOCK"
    async with shop.db.sessions() as session, session.begin():
        rows.codes(session, await session.get_one(Sku, sku.pk), CodeStatus.AVAILABLE, 1)

    for refusals in range(30):
        answer = (await shop.gql(PLAIN, variables(sku)))["data"]["placeOrder"]
        if answer["order"] is not None:
            break
        assert answer["userErrors"][0]["code"] == "OUT_OF_STOCK"
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("still refused after 1.5 s")
    assert refusals <= 25
