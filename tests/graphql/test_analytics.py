"""Operators read sales by time bucket, top products and channel performance; a partner its own channel's.

The shop is fresh, so every figure is counted from the five orders of `sales`, placed
through the API and then moved to the placement times and statuses the table gives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from domain.catalog import CodeStatus, SkuKind
from domain.orders import OrderStatus
from models import Order, Product, RiskVerdict
from schema.relay import encode_id
from tests.e2e.shop import Shop, StockedSku, open_shop, order_input
from tests.services import catalog_rows as rows

SALES = """
query Sales($from: DateTime!, $to: DateTime!, $bucket: TimeBucket!, $channel: String) {
  salesSummary(from: $from, to: $to, bucket: $bucket, channel: $channel) {
    start orders units paidOrders revenue { amount currency } refunds { amount }
  }
}
"""
TOP = """
query Top($from: DateTime!, $to: DateTime!, $channel: String, $first: Int, $by: ProductRanking) {
  topProducts(from: $from, to: $to, channel: $channel, first: $first, by: $by) {
    product { id name } orders units revenue { amount }
  }
}
"""
CHANNELS = """
query Channels($from: DateTime!, $to: DateTime!, $channel: String) {
  channelPerformance(from: $from, to: $to, channel: $channel) {
    channel orders paidOrders revenue { amount currency } refunds { amount } delivered conversion riskRejections riskRejectionRate
  }
}
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number } accessToken userErrors { code } }
}
"""
PAY = "mutation Pay($id: ID!) { payOrder(orderId: $id, paymentReference: \"pay-1\") { userErrors { code } } }"
CANCEL = "mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { userErrors { code } } }"

T = datetime(2026, 1, 5, tzinfo=UTC)
DAY = {"from": "2026-01-05T00:00:00Z", "to": "2026-01-06T00:00:00Z"}


@dataclass(frozen=True)
class Sales:
    card: str  # global ID of the product of the 40.00 SKU
    pack: str  # global ID of the product of the 25.00 SKU


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("analytics")) as opened:
        yield opened


async def _sku_of_another_product(shop: Shop, *, price_fen: int, codes: int) -> tuple[int, StockedSku]:
    async with shop.db.sessions() as session, session.begin():
        shelf = await session.get_one(Product, shop.shelf.product_id)
        product = Product(slug=rows.unique("pack"), name="礼包", brand_id=shelf.brand_id, category_id=shelf.category_id)
        session.add(product)
        await session.flush()
        await rows.list_everywhere(session, product)
        sku = await rows.sku(session, product, SkuKind.CARD_CODE, price_fen=price_fen)
        rows.codes(session, sku, CodeStatus.AVAILABLE, codes)
    return product.id, StockedSku(sku.id, sku.code)


async def _place(shop: Shop, sku: StockedSku, quantity: int, channel: str, key: str | None = None) -> dict[str, Any]:
    answer = await shop.gql(PLACE, {"input": order_input((sku, quantity), channel=channel)}, key=key)
    assert answer["data"]["placeOrder"]["userErrors"] == [], answer
    return answer["data"]["placeOrder"]


async def _ok(shop: Shop, document: str, order: dict[str, Any], key: str) -> None:
    answer = await shop.gql(document, {"id": order["order"]["id"]}, key=key)
    assert next(iter(answer["data"].values()))["userErrors"] == [], answer


async def _move(shop: Shop, order: dict[str, Any], placed: datetime, status: OrderStatus | None = None) -> None:
    values: dict[str, Any] = {"created_at": placed}
    if status is not None:
        values["status"] = status
    async with shop.db.sessions() as session, session.begin():
        await session.execute(update(Order).where(Order.number == order["order"]["number"]).values(**values))


@pytest.fixture(scope="module")
async def sales(shop: Shop) -> Sales:
    """
    | # | channel | SKU      | status       | placed (UTC)  | total |
    |---|---------|----------|--------------|---------------|-------|
    | 1 | web     | card × 2 | PAID         | 01-05 00:15   | 80.00 |
    | 2 | web     | pack × 1 | DELIVERED    | 01-05 00:45   | 25.00 |
    | 3 | web     | card × 1 | CANCELLED    | 01-05 01:10   | 40.00 |
    | 4 | taobao  | pack × 2 | PAID         | 01-05 01:20   | 50.00 |
    | 5 | taobao  | card × 1 | REJECTED     | 01-05 03:00   | 40.00 |
    | - | taobao  | card × 1 | risk check: REJECT, no order | 01-05 03:30 | |
    """
    card = await shop.shelf.card_codes(20, price_fen=4000)
    pack_product, pack = await _sku_of_another_product(shop, price_fen=2500, codes=20)
    admin, taobao = shop.keys.admin, shop.keys.taobao

    first = await _place(shop, card, 2, "web")
    await _ok(shop, PAY, first, admin)
    second = await _place(shop, pack, 1, "web")
    await _ok(shop, PAY, second, admin)
    third = await _place(shop, card, 1, "web")
    await _ok(shop, CANCEL, third, third["accessToken"])
    fourth = await _place(shop, pack, 2, "taobao", taobao)
    await _ok(shop, PAY, fourth, taobao)
    fifth = await _place(shop, card, 1, "taobao", taobao)
    # The demo's device blacklist rejects this attempt: a verdict, and no order.
    banned = order_input((card, 1), channel="taobao", buyer={"phone": "13800138000", "deviceId": "demo-banned-device"})
    refused = await shop.gql(PLACE, {"input": banned}, key=taobao)
    assert refused["data"]["placeOrder"]["userErrors"][0]["code"] == "RISK_REJECTED", refused
    async with shop.db.sessions() as session, session.begin():
        await session.execute(update(RiskVerdict).where(RiskVerdict.idempotency_key == banned["idempotencyKey"])
                              .values(created_at=T + timedelta(hours=3, minutes=30)))

    # No fulfilment yet, and a review's rejection is written directly.
    await _move(shop, first, T + timedelta(minutes=15))
    await _move(shop, second, T + timedelta(minutes=45), OrderStatus.DELIVERED)
    await _move(shop, third, T + timedelta(minutes=70))
    await _move(shop, fourth, T + timedelta(minutes=80))
    await _move(shop, fifth, T + timedelta(hours=3), OrderStatus.REJECTED)
    return Sales(card=encode_id("Product", shop.shelf.product_id), pack=encode_id("Product", pack_product))


def bucket(start: str, orders: int = 0, units: int = 0, paid: int = 0, revenue: str = "0.00", refunds: str = "0.00") -> dict[str, Any]:
    return {
        "start": start, "orders": orders, "units": units, "paidOrders": paid,
        "revenue": {"amount": revenue, "currency": "CNY"}, "refunds": {"amount": refunds},
    }


def codes(answer: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in answer.get("errors", [])]


async def test_an_operator_reads_hourly_sales_of_every_channel(shop: Shop, sales: Sales) -> None:
    answer = await shop.gql(SALES, {"from": "2026-01-05T00:00:00Z", "to": "2026-01-05T04:00:00Z", "bucket": "HOUR"}, key=shop.keys.admin)

    assert answer == {"data": {"salesSummary": [
        bucket("2026-01-05T00:00:00+00:00", orders=2, units=3, paid=2, revenue="105.00"),
        bucket("2026-01-05T01:00:00+00:00", orders=2, units=3, paid=1, revenue="50.00"),
        bucket("2026-01-05T02:00:00+00:00"),
        bucket("2026-01-05T03:00:00+00:00", orders=1, units=1),
    ]}}


async def test_daily_sales_of_one_channel_in_beijing_days(shop: Shop, sales: Sales) -> None:
    variables = {"from": "2026-01-05T00:00:00+08:00", "to": "2026-01-07T00:00:00+08:00", "bucket": "DAY", "channel": "web"}

    answer = await shop.gql(SALES, variables, key=shop.keys.admin)

    # Beijing's 5 January ends at 16:00 UTC: the three web orders all fall on it.
    assert answer == {"data": {"salesSummary": [
        bucket("2026-01-05T00:00:00+08:00", orders=3, units=4, paid=2, revenue="105.00"),
        bucket("2026-01-06T00:00:00+08:00"),
    ]}}


async def test_a_partner_reads_its_own_channels_sales(shop: Shop, sales: Sales) -> None:
    variables = {"from": "2026-01-05T00:00:00Z", "to": "2026-01-05T04:00:00Z", "bucket": "HOUR", "channel": "taobao"}

    answer = await shop.gql(SALES, variables, key=shop.keys.taobao)

    assert answer == {"data": {"salesSummary": [
        bucket("2026-01-05T00:00:00+00:00"),
        bucket("2026-01-05T01:00:00+00:00", orders=1, units=2, paid=1, revenue="50.00"),
        bucket("2026-01-05T02:00:00+00:00"),
        bucket("2026-01-05T03:00:00+00:00", orders=1, units=1),
    ]}}


@pytest.mark.parametrize(
    ("caller", "channel", "code"),
    [("taobao", None, "FORBIDDEN"), ("taobao", "web", "FORBIDDEN"), ("b2b", "taobao", "FORBIDDEN"),
     ("web", "web", "FORBIDDEN"), (None, "web", "UNAUTHENTICATED")],
)
async def test_nobody_else_reads_a_channels_figures(shop: Shop, sales: Sales, caller: str | None, channel: str | None, code: str) -> None:
    key = getattr(shop.keys, caller) if caller else None
    for document, variables in ((SALES, {**DAY, "bucket": "HOUR"}), (TOP, DAY), (CHANNELS, DAY)):
        answer = await shop.gql(document, {**variables, "channel": channel}, key=key)

        assert answer["data"] is None and codes(answer) == [code], answer


@pytest.mark.parametrize(
    "variables",
    [
        {"from": "2026-01-05T00:00:00Z", "to": "2026-01-05T00:00:00Z", "bucket": "HOUR"},  # empty
        {"from": "2026-01-06T00:00:00Z", "to": "2026-01-05T00:00:00Z", "bucket": "HOUR"},  # backwards
        {"from": "2026-01-05T00:00:00", "to": "2026-01-06T00:00:00Z", "bucket": "HOUR"},  # no time zone
        {"from": "2026-01-05T00:00:00Z", "to": "2026-01-06T00:00:00Z", "bucket": "MINUTE"},  # 1,440 buckets
        {**DAY, "bucket": "HOUR", "channel": "jd"},  # no such channel
    ],
)
async def test_a_range_the_figures_cannot_answer_is_the_callers_error(shop: Shop, sales: Sales, variables: dict[str, Any]) -> None:
    answer = await shop.gql(SALES, variables, key=shop.keys.admin)

    assert answer.get("data") is None and codes(answer) == ["BAD_USER_INPUT"], answer


async def test_top_products_by_units_or_by_revenue(shop: Shop, sales: Sales) -> None:
    by_units = await shop.gql(TOP, DAY, key=shop.keys.admin)
    by_revenue = await shop.gql(TOP, {**DAY, "by": "REVENUE", "first": 1}, key=shop.keys.admin)
    on_taobao = await shop.gql(TOP, {**DAY, "channel": "taobao"}, key=shop.keys.taobao)
    too_many = await shop.gql(TOP, {**DAY, "first": 101}, key=shop.keys.admin)

    pack = {"product": {"id": sales.pack, "name": "礼包"}, "orders": 2, "units": 3, "revenue": {"amount": "75.00"}}
    card = {"product": {"id": sales.card, "name": "下单测试商品"}, "orders": 1, "units": 2, "revenue": {"amount": "80.00"}}
    assert by_units == {"data": {"topProducts": [pack, card]}}
    assert by_revenue == {"data": {"topProducts": [card]}}
    assert on_taobao == {"data": {"topProducts": [{**pack, "orders": 1, "units": 2, "revenue": {"amount": "50.00"}}]}}
    assert codes(too_many) == ["BAD_USER_INPUT"]


def channel(code: str, orders: int = 0, paid: int = 0, revenue: str = "0.00", delivered: int = 0,
            conversion: str | None = None, rejections: int = 0, rejection_rate: str | None = None) -> dict[str, Any]:
    return {
        "channel": code, "orders": orders, "paidOrders": paid, "revenue": {"amount": revenue, "currency": "CNY"},
        "refunds": {"amount": "0.00"}, "delivered": delivered, "conversion": conversion,
        "riskRejections": rejections, "riskRejectionRate": rejection_rate,
    }


async def test_channel_performance_from_placement_to_delivery(shop: Shop, sales: Sales) -> None:
    every = await shop.gql(CHANNELS, DAY, key=shop.keys.admin)
    own = await shop.gql(CHANNELS, {**DAY, "channel": "taobao"}, key=shop.keys.taobao)

    # One attempt rejected by the risk check beside two orders placed: a third of the attempts.
    taobao = channel("taobao", orders=2, paid=1, revenue="50.00", conversion="0.0000", rejections=1, rejection_rate="0.3333")
    assert every == {"data": {"channelPerformance": [
        channel("b2b-demo"), channel("h5"), channel("mini"), taobao,
        channel("web", orders=3, paid=2, revenue="105.00", delivered=1, conversion="0.3333", rejection_rate="0.0000"),
    ]}}
    assert own == {"data": {"channelPerformance": [taobao]}}
