"""Buyer profiles (用户画像): one buyer however the phone is spelled, figures that match the orders
summed independently, contacts masked in every answer, and erased for retention with the figures kept."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from models.buyers import BuyerProfile
from services.analytics.buyer_refresh import keep_once, until_due
from services.analytics.buyers import profile_secret
from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id status } userErrors { code } } }
"""
PAY = "mutation Pay($id: ID!) { payOrder(orderId: $id, paymentReference: \"p\") { order { status } userErrors { code } } }"
CANCEL = "mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }"
PROFILES = """
query Profiles($segment: BuyerSegment, $after: String, $first: Int) {
  buyerProfiles(segment: $segment, after: $after, first: $first) {
    edges { cursor node { buyerId contact segment recencyDays orders attempts spent { amount currency }
      couponOrders channels { name orders } categories { name orders } reviews rejects fraudLabels } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
SEGMENTS = "query { buyerSegments { segment buyers } }"
RULE = """
mutation { createRiskRule(input: { name: "listed phone", kind: BLACKLIST, action: REJECT,
  parameters: { dimension: "PHONE", values: ["13700137000"] } }) { rule { id } userErrors { code } } }
"""

# Independent of the service's statements: plain SQL over the orders, one buyer per phone or else e-mail.
AGGREGATE = """
SELECT COALESCE(buyer_phone, buyer_email) AS who, COUNT(*) AS attempts,
       SUM(CASE WHEN paid_at IS NOT NULL AND status <> 'REFUNDED' THEN 1 ELSE 0 END) AS paid,
       SUM(CASE WHEN paid_at IS NOT NULL AND status <> 'REFUNDED' THEN total_fen ELSE 0 END) AS spent
FROM "order" GROUP BY COALESCE(buyer_phone, buyer_email)
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("buyers")) as opened:
        yield opened


@pytest.fixture(scope="module")
async def coins(shop: Shop) -> StockedSku:
    return await shop.shelf.card_codes(40, price_fen=4000)


async def order(shop: Shop, sku: StockedSku, units: int, buyer: dict[str, Any], *, pay: bool, channel: str = "web") -> str:
    placed = (await shop.gql(PLACE, {"input": order_input((sku, units), buyer=buyer, channel=channel)}))["data"]["placeOrder"]
    if placed["order"] is None:
        return ""
    if pay:
        await shop.gql(PAY, {"id": placed["order"]["id"]}, key=shop.keys.admin)
    return placed["order"]["id"]


async def profiles(shop: Shop, **variables: Any) -> list[dict[str, Any]]:
    answer = await shop.gql(PROFILES, {"first": 50, **variables}, key=shop.keys.admin)
    assert "data" in answer, answer
    return [edge["node"] for edge in answer["data"]["buyerProfiles"]["edges"]]


async def keep(shop: Shop, *, retention_days: int = 0, now: datetime | None = None) -> None:
    await keep_once(shop.db, profile_secret(shop.settings.secret_key), retention_days=retention_days,
                    now=now or datetime.now(UTC))


@pytest.fixture(scope="module")
async def buyers(shop: Shop, coins: StockedSku) -> None:
    """Li (three spellings of one phone, two paid), Wang (an e-mail, one paid), Zhao (unpaid, cancelled)."""
    await order(shop, coins, 1, {"phone": "13800138001"}, pay=True)
    await order(shop, coins, 2, {"phone": "+86 138-0013-8001"}, pay=True, channel="mini")
    await order(shop, coins, 1, {"phone": "008613800138001"}, pay=False)
    await order(shop, coins, 1, {"email": "Wang@Example.cn "}, pay=True)
    cancelled = await order(shop, coins, 1, {"phone": "13900139002"}, pay=False)
    await shop.gql(CANCEL, {"id": cancelled}, key=shop.keys.admin)
    await shop.gql(RULE, key=shop.keys.admin)
    await order(shop, coins, 1, {"phone": "137 0013 7000"}, pay=False)  # rejected: no order, only its verdict
    await keep(shop)


async def test_one_buyer_however_the_phone_is_spelled_with_figures_matching_the_orders(
    shop: Shop, buyers: None
) -> None:
    found = {p["contact"]: p for p in await profiles(shop)}
    async with shop.db.fresh_sessions() as session:
        expected = {who: (attempts, paid, spent) for who, attempts, paid, spent in await session.execute(text(AGGREGATE))}

    li = found["138****8001"]
    assert (li["attempts"], li["orders"], li["spent"]) == (3, 2, [{"amount": "120.00", "currency": "CNY"}])
    assert li["channels"] == [{"name": "web", "orders": 2}, {"name": "mini", "orders": 1}]
    assert li["segment"] == "NEW" and li["recencyDays"] == 0
    assert found["w***@example.cn"]["orders"] == 1
    for contact, who in (("138****8001", "13800138001"), ("w***@example.cn", "wang@example.cn"),
                         ("139****9002", "13900139002")):
        attempts, paid, spent = expected[who]
        profile = found[contact]
        assert (profile["attempts"], profile["orders"]) == (attempts, paid)
        assert sum(int(m["amount"].replace(".", "")) for m in profile["spent"]) == spent


async def test_a_rejected_attempt_makes_its_buyer_suspicious(shop: Shop, buyers: None) -> None:
    suspicious = await profiles(shop, segment="SUSPICIOUS")
    counts = {row["segment"]: row["buyers"] for row in (await shop.gql(SEGMENTS, key=shop.keys.admin))["data"]["buyerSegments"]}

    assert [(p["contact"], p["rejects"], p["attempts"]) for p in suspicious] == [("137****7000", 1, 0)]
    assert counts["SUSPICIOUS"] == 1 and sum(counts.values()) == len(await profiles(shop))


async def test_no_answer_holds_a_whole_phone_or_address(shop: Shop, buyers: None) -> None:
    answer = json.dumps(await shop.gql(PROFILES, {"first": 50}, key=shop.keys.admin))

    for whole in ("13800138001", "13900139002", "13700137000", "wang@example.cn", "Wang@Example.cn"):
        assert whole not in answer


async def test_pages_follow_one_another_and_a_forged_cursor_is_refused(shop: Shop, buyers: None) -> None:
    first = await shop.gql(PROFILES, {"first": 2}, key=shop.keys.admin)
    page = first["data"]["buyerProfiles"]
    rest = await profiles(shop, after=page["pageInfo"]["endCursor"])
    forged = await shop.gql(PROFILES, {"after": "QnV5ZXJQcm9maWxlQ3Vyc29yOicgT1IgMT0xIC0t"}, key=shop.keys.admin)

    assert page["pageInfo"]["hasNextPage"] is True
    assert len(page["edges"]) + len(rest) == len(await profiles(shop))
    assert forged["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_only_operators_read_profiles(shop: Shop, buyers: None) -> None:
    for key in (shop.keys.taobao, None):
        assert (await shop.gql(SEGMENTS, key=key)).get("data") is None


async def test_retention_erases_contacts_of_settled_orders_and_keeps_every_figure(
    shop: Shop, coins: StockedSku, buyers: None
) -> None:
    before = {p["buyerId"]: p for p in await profiles(shop)}

    await keep(shop, retention_days=1, now=datetime.now(UTC) + timedelta(days=2))
    after = {p["buyerId"]: p for p in await profiles(shop)}
    async with shop.db.fresh_sessions() as session:
        kept = (await session.execute(text(
            "SELECT status, buyer_phone, buyer_email FROM \"order\" WHERE buyer_phone IS NOT NULL OR buyer_email IS NOT NULL"
        ))).all()
        erased = (await session.execute(text(
            "SELECT status, buyer_ref FROM \"order\" WHERE buyer_phone IS NULL AND buyer_email IS NULL"
        ))).all()
        facts = [row[0] for row in (await session.execute(text("SELECT facts FROM risk_verdict"))).all()]

    assert set(after) == set(before)
    for buyer, profile in after.items():
        figures = {k: v for k, v in profile.items() if k not in ("contact", "recencyDays", "segment")}
        assert figures == {k: v for k, v in before[buyer].items() if k not in ("contact", "recencyDays", "segment")}
    # Orders still open (unpaid, paid and not yet delivered) keep their contacts; Zhao's cancelled one is erased.
    assert sorted(status for status, _, _ in kept) == ["PAID", "PAID", "PAID", "PENDING_PAYMENT"]
    zhao = next(b for b, p in before.items() if p["contact"] == "139****9002")
    assert erased == [("CANCELLED", zhao)] and after[zhao]["contact"] is None
    rejected = next(b for b, p in before.items() if p["contact"] == "137****7000")
    assert "13700137000" not in json.dumps(facts) and after[rejected] == {**before[rejected], "contact": None}


async def test_a_gateway_started_beside_fresh_profiles_waits_before_summing_them_again(shop: Shop, buyers: None) -> None:
    # Every gateway (each worker, each restart) keeps the profiles; only the first of a period sums every order.
    assert await until_due(shop.db, 300.0) > 290.0
    async with shop.db.sessions() as session, session.begin():
        await session.execute(update(BuyerProfile).values(refreshed_at=datetime.now(UTC) - timedelta(seconds=400)))
    assert await until_due(shop.db, 300.0) == 0.0
    await keep(shop)
