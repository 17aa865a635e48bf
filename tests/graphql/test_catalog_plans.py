"""Catalog reads answered from execution plans give graphql-core's answer, whole: data, errors
with their paths and null propagation, for aliases, fragments, skip/include, __typename,
pagination, filters, keys of every kind, channel prices, tiers and quotas.

Every document of the corpus goes to two gateways on one database: this run's (plans on)
and one with QUANYI_CATALOG_PLANS=0, where graphql-core resolves field by field.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import delete, select, update

from config import Settings
from gateway import create_app
from models import Channel, ChannelPrice, ChannelQuota, PriceTier, Sku
from services.core.database import Database
from services.core.events import CATALOG_CHANGED, STOCK_BY_ORDERS, catalog_changed
from tests.graphql.conftest import Keys
from tests.support import GraphQLClient, StatementCounter

PAGE = """
query Page($channel: String!, $first: Int, $after: String) {
  products(channel: $channel, first: $first, after: $after) {
    edges { cursor node { id name slug brand { code name } skus { id code kind price { amount currency }
      stock { available reserved presale } } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

EVERYTHING = """
{
  products(channel: "web", first: 20) {
    __typename
    pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor }
    edges { __typename cursor node { __typename id slug name description imageUrls attributes version archivedAt
      brand { __typename id code name version archivedAt } category { __typename id code name version archivedAt }
      skus { __typename id code name kind currency serialUses rechargeAccountFormats version archivedAt
        faceValue { __typename amount currency } price { __typename amount currency }
        priceTiers { __typename minQuantity price { amount currency } }
        stock { __typename available reserved presale } } } }
  }
}
"""

ALIASES = """
{
  first: products(channel: "web", first: 2) { list: edges { at: cursor item: node { key: id title: name
    sold: skus { ref: code cost: price { value: amount } same: price { currency } } } } }
  again: products(channel: "h5", first: 1) { edges { node { id } } info: pageInfo { more: hasNextPage } }
  kind: __typename
}
"""

FRAGMENTS = """
query Fragments {
  products(channel: "web", first: 4) {
    ...Page
    edges { node { ... on Node { id } ... on Product { slug skus { ...Sku } } ...Named } }
  }
}
fragment Page on ProductConnection { pageInfo { endCursor } edges { cursor } }
fragment Named on Product { name brand { ...BrandName } }
fragment BrandName on Brand { name ... on Node { id } }
fragment Sku on Sku { code price { amount } ... { kind } }
"""

DIRECTIVES = """
query Directives($skus: Boolean!, $brand: Boolean!) {
  products(channel: "web", first: 3) {
    edges { node {
      id
      name @include(if: $skus)
      skus @include(if: $skus) { code stock @skip(if: $brand) { available } }
      brand @skip(if: $brand) { name }
      ... on Product @include(if: $brand) { slug }
      ...Price @skip(if: $skus)
    } }
  }
}
fragment Price on Product { skus { price { amount } } }
"""

ERROR_PAGE = """
query Errors($channel: String!, $first: Int, $after: String, $filter: ProductFilter) {
  products(channel: $channel, first: $first, after: $after, filter: $filter) { edges { node { id } } }
}
"""

TWO_ROOTS_ONE_FAILS = """
{
  web: products(channel: "web", first: 1) { edges { node { id } } }
  nowhere: products(channel: "atlantis") { edges { node { id } } }
}
"""

OUTSIDE_THE_PLAN = """
{
  products(channel: "web", first: 3) { totalCount edges { node { id skus { code basePrice { amount }
    channelQuota { quota } } } } }
}
"""

DEFAULTS = """
query Defaults($first: Int = 2) { products(channel: "mini", first: $first) { edges { node { slug } } } }
query Other { products(channel: "h5") { edges { node { name } } } }
"""


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    query: str
    variables: dict[str, Any] | None = None
    key: str | None = None  # an attribute of Keys
    planned: bool = True  # answered from a plan (else graphql-core runs it)
    operation: str | None = None


def _cursor(product_id: int) -> str:
    return base64.b64encode(f"ProductCursor:{product_id}".encode()).decode()


CASES = [
    Case("everything", EVERYTHING),
    Case("everything as admin", EVERYTHING, key="admin"),
    Case("everything with a storefront key", EVERYTHING, key="web"),
    Case("aliases", ALIASES),
    Case("fragments", FRAGMENTS),
    Case("skus included, brand kept", DIRECTIVES, {"skus": True, "brand": False}),
    Case("skus left out, brand skipped", DIRECTIVES, {"skus": False, "brand": True}),
    Case("page one of two", PAGE, {"channel": "web", "first": 4}),
    Case("first zero", PAGE, {"channel": "web", "first": 0}),
    Case("first null", PAGE, {"channel": "web", "first": None}),
    Case("pages from a cursor", PAGE, {"channel": "web", "first": 3, "after": "CURSOR:3"}),
    Case("an empty page after the last", PAGE, {"channel": "web", "first": 3, "after": "CURSOR:LAST"}),
    Case("partner's own channel with its prices and quotas", EVERYTHING.replace('"web"', '"b2b-demo"'), key="b2b"),
    Case("marketplace partner", PAGE, {"channel": "taobao", "first": 20}, key="taobao"),
    Case("filter by brand", ERROR_PAGE, {"channel": "web", "filter": {"brand": "tencent"}}),
    Case("filter by kind", ERROR_PAGE, {"channel": "web", "filter": {"kind": "BUNDLE"}}),
    Case("filter by text", ERROR_PAGE, {"channel": "web", "filter": {"text": "会员"}}),
    Case("default variable and operation name", DEFAULTS, operation="Defaults"),
    Case("the other operation", DEFAULTS, operation="Other"),
    Case("unknown channel", ERROR_PAGE, {"channel": "atlantis"}, planned=False),
    Case("another channel's partner", ERROR_PAGE, {"channel": "b2b-demo"}, key="taobao", planned=False),
    Case("anonymous on a partner channel", ERROR_PAGE, {"channel": "taobao"}, planned=False),
    Case("first below zero", ERROR_PAGE, {"channel": "web", "first": -1}, planned=False),
    Case("first above the page limit", ERROR_PAGE, {"channel": "web", "first": 100_000}, planned=False),
    Case("malformed cursor", ERROR_PAGE, {"channel": "web", "after": "bm90IGEgY3Vyc29y"}, planned=False),
    Case("another type's cursor", ERROR_PAGE, {"channel": "web", "after": "U2t1OjE="}, planned=False),
    Case("filter text too long", ERROR_PAGE, {"channel": "web", "filter": {"text": "x" * 101}}, planned=False),
    Case("variables that do not coerce", ERROR_PAGE, {"channel": "web", "first": "two"}, planned=False),
    Case("one root field of two fails", TWO_ROOTS_ONE_FAILS, planned=False),
    Case("fields outside the plan", OUTSIDE_THE_PLAN, key="admin", planned=False),
]


@pytest.fixture(scope="module")
async def priced(db: Database, app: object) -> AsyncIterator[None]:
    """The B2B channel with a standing price, an open promotion, quantity tiers and a quota."""
    now = datetime.now(UTC)
    async with db.sessions() as session, session.begin():
        channel_id = await session.scalar(select(Channel.id).where(Channel.code == "b2b-demo"))
        skus = list(await session.scalars(select(Sku).where(Sku.active.is_(True)).order_by(Sku.id).limit(3)))
        first, second, third = skus
        session.add_all([
            ChannelPrice(channel_id=channel_id, sku_id=first.id, price_fen=first.base_price_fen - 10),
            ChannelPrice(channel_id=channel_id, sku_id=second.id, price_fen=second.base_price_fen - 20,
                         starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1)),
            PriceTier(channel_id=channel_id, sku_id=first.id, min_quantity=10, price_fen=first.base_price_fen - 30),
            PriceTier(channel_id=channel_id, sku_id=first.id, min_quantity=100, price_fen=first.base_price_fen - 40),
            ChannelQuota(channel_id=channel_id, sku_id=third.id, quota=2, used=1),
        ])
    app.state.catalog_reference.forget()  # type: ignore[attr-defined]
    yield
    async with db.sessions() as session, session.begin():
        for model in (ChannelPrice, PriceTier, ChannelQuota):
            await session.execute(delete(model).where(model.channel_id == channel_id))
    app.state.catalog_reference.forget()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
async def field_by_field(settings: Settings, app: object) -> AsyncIterator[GraphQLClient]:
    other = create_app(dataclasses.replace(settings, catalog_plans=False))
    async with LifespanManager(other):
        transport = httpx.ASGITransport(app=other)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
            yield GraphQLClient(client)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_a_planned_answer_is_graphql_cores_answer(
    case: Case, priced: None, gql: GraphQLClient, field_by_field: GraphQLClient, keys: Keys,
    statements: StatementCounter,
) -> None:
    variables = case.variables
    if variables is not None and isinstance(variables.get("after"), str) and variables["after"].startswith("CURSOR:"):
        # A cursor from the page itself: after the third product, or after the last one.
        page = await gql(PAGE, {"channel": "web", "first": 100})
        cursors = [edge["cursor"] for edge in page["data"]["products"]["edges"]]
        variables = {**variables, "after": cursors[2] if variables["after"] == "CURSOR:3" else cursors[-1]}
    key = getattr(keys, case.key) if case.key else None
    body: dict[str, Any] = {"query": case.query}
    if variables is not None:
        body["variables"] = variables
    if case.operation is not None:
        body["operationName"] = case.operation
    headers = {"accept": "application/graphql-response+json"}
    if key:
        headers["authorization"] = f"Bearer {key}"

    planned = await gql.http.post("/graphql", json=body, headers=headers)  # reference data now read
    again, count = await statements.measure(gql.http.post("/graphql", json=body, headers=headers))
    graphql_core = await field_by_field.http.post("/graphql", json=body, headers=headers)

    assert (planned.status_code, _answer(planned)) == (graphql_core.status_code, _answer(graphql_core))
    assert _answer(again) == _answer(planned)
    if case.planned:
        # The page and its stock at most: graphql-core would have sent far more.
        assert "errors" not in planned.json() and count <= 2, statements.seen
    else:
        assert count > 2 or "errors" in planned.json()


def _answer(response: httpx.Response) -> dict[str, Any]:
    """The answer without request ids (each request has its own), and of the cost its
    figures, not the budget's (which moves between requests)."""
    answer = response.json()
    cost = answer.pop("extensions", {}).get("cost", {})
    answer["cost"] = (cost.get("requestedQueryCost"), cost.get("actualQueryCost"))
    for error in answer.get("errors", []):
        error.get("extensions", {}).pop("requestId", None)
    return answer


NAMES = """
{ products(channel: "web", first: 1) { edges { node { skus { id name stock { available } } } } } }
"""


async def test_kept_skus_and_prices_are_dropped_by_a_catalog_change_and_kept_through_stock_moves(
    gql: GraphQLClient, db: Database, app: object, statements: StatementCounter
) -> None:
    broker = app.state.broker  # type: ignore[attr-defined]
    before = await gql(NAMES)
    sku = before["data"]["products"]["edges"][0]["node"]["skus"][0]
    pk = int(base64.b64decode(sku["id"]).decode().split(":")[1])

    # Stock moved by orders: the kept rows stay, the page costs its two statements.
    await broker.publish(CATALOG_CHANGED, STOCK_BY_ORDERS)
    await asyncio.sleep(0.05)
    again, count = await statements.measure(gql(NAMES))
    assert again == before and count == 2, statements.seen

    # A change of the SKU, published as catalog changes are: the next page shows it.
    async with db.sessions() as session, session.begin():
        await session.execute(update(Sku).where(Sku.id == pk).values(name="renamed for the test"))
    try:
        await catalog_changed(broker, "sku")
        for _ in range(50):
            after = await gql(NAMES)
            if after["data"]["products"]["edges"][0]["node"]["skus"][0]["name"] == "renamed for the test":
                break
            await asyncio.sleep(0.02)
        assert after["data"]["products"]["edges"][0]["node"]["skus"][0]["name"] == "renamed for the test"
    finally:
        async with db.sessions() as session, session.begin():
            await session.execute(update(Sku).where(Sku.id == pk).values(name=sku["name"]))
        await catalog_changed(broker, "sku")
