"""Campaigns and coupons through the real endpoint: operators create campaigns; buyers redeem a
code with placeOrder. A coupon that cannot apply is a userError that reserves nothing; uses,
budget and per-buyer limits hold under concurrency; an order that ends unsold gives its
redemption back exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update

from broker import MemoryBroker
from models import CouponCode, Order
from services.orders.expiry import expire_once
from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

CREATE = """
mutation Create($input: CreateCampaignInput!) {
  createCampaign(input: $input) {
    campaign { id name code redemptions maxRedemptions spent { amount } }
    userErrors { field message code }
  }
}
"""
GENERATE = """
mutation Generate($id: ID!, $count: Int!) {
  generateCouponCodes(campaignId: $id, count: $count) { codes userErrors { field message code } }
}
"""
CAMPAIGN = """
query Campaign($id: ID!) {
  campaign(id: $id) {
    redemptions spent { amount currency }
    performance { orders discountGiven { amount } paidOrders revenue { amount } revenuePerDiscount }
  }
}
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order { id number status total { amount currency } discount { amount currency } couponCode
            lines { unitPrice { amount } discount { amount } } }
    accessToken
    userErrors { field message code }
  }
}
"""
CANCEL = "mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }"
PAY = """
mutation Pay($id: ID!, $reference: String!) { payOrder(orderId: $id, paymentReference: $reference) { userErrors { code } } }
"""
SALES = """
query Sales($from: DateTime!, $to: DateTime!) {
  salesSummary(from: $from, to: $to, bucket: HOUR, channel: "web") { paidOrders revenue { amount } discounts { amount } }
}
"""
FLOOR = """
mutation Floor($input: SetPriceControlInput!) { setPriceControl(input: $input) { userErrors { code } } }
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("coupons")) as opened:
        yield opened


async def campaign(shop: Shop, *skus: StockedSku, channel: str = "web", **fields: Any) -> dict[str, Any]:
    given = {"name": "双十二满减", "channel": channel, "skuIds": [sku.gid for sku in skus], **fields}
    answer = await shop.gql(CREATE, {"input": given}, key=shop.keys.admin)
    created = answer["data"]["createCampaign"]
    assert created["userErrors"] == [], created
    return created["campaign"]


async def place(
    shop: Shop, *lines: tuple[StockedSku, int], code: str | None, phone: str = "13800138000", channel: str = "web",
    key: str | None = None, buyer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    given = {**order_input(*lines, channel=channel, buyer=buyer or {"phone": phone}), "couponCode": code}
    return (await shop.gql(PLACE, {"input": given}, key=key))["data"]["placeOrder"]


def outcome(placed: dict[str, Any]) -> str:
    return placed["userErrors"][0]["code"] if placed["userErrors"] else "PLACED"


async def figures(shop: Shop, campaign_id: str) -> dict[str, Any]:
    return (await shop.gql(CAMPAIGN, {"id": campaign_id}, key=shop.keys.admin))["data"]["campaign"]


async def test_a_public_code_in_any_spelling_takes_its_amount_off_exactly(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(12, price_fen=3333)
    await campaign(shop, coins, code="SPRING-2026", amountOff="5.50")

    answers = [await place(shop, (coins, 3), code=spelling)
               for spelling in ("SPRING-2026", "spring 2026", "ＳＰＲＩＮＧ２０２６", "SPR1NG2O26")]

    assert [a["userErrors"] for a in answers] == [[]] * 4
    assert answers[0]["order"]["total"] == {"amount": "94.49", "currency": "CNY"}  # 3 × 33.33 − 5.50
    assert answers[0]["order"]["discount"] == {"amount": "5.50", "currency": "CNY"}
    assert answers[0]["order"]["lines"] == [{"unitPrice": {"amount": "33.33"}, "discount": {"amount": "5.50"}}]
    assert {a["order"]["couponCode"] for a in answers} == {"SPRING-2026"}  # as the campaign spells it


async def test_a_percentage_is_capped_and_shared_among_lines_to_the_fen(shop: Shop) -> None:
    cheap, dear, other = [await shop.shelf.card_codes(5, price_fen=fen) for fen in (999, 3333, 500)]
    capped = await campaign(shop, cheap, dear, code="THIRTYOFF", percentOff=30, maxDiscount="12.34")
    uncapped = await campaign(shop, cheap, code="TENOFF", percentOff=10)

    within = await place(shop, (cheap, 1), (dear, 1), (other, 1), code="thirtyoff")
    small = await place(shop, (cheap, 1), (other, 1), code="THIRTYOFF")
    rounded = await place(shop, (cheap, 1), code="TENOFF")

    # 30% of 43.32 (the campaign's lines) is 13.00, over the cap: 12.34, shared 999 : 3333 (2.85 + 9.49), none on `other`.
    assert within["order"]["discount"]["amount"] == "12.34"
    assert [line["discount"]["amount"] for line in within["order"]["lines"]] == ["2.85", "9.49", "0.00"]
    assert within["order"]["total"]["amount"] == "35.98"  # 9.99 + 33.33 + 5.00 − 12.34
    assert small["order"]["discount"]["amount"] == "3.00"  # 30% of 9.99 = 2.997, half-up to the fen
    assert rounded["order"]["total"]["amount"] == "8.99"  # 9.99 − 1.00 (0.999 rounds to 1.00)
    assert (await figures(shop, capped["id"]))["redemptions"] == 2
    assert (await figures(shop, uncapped["id"]))["spent"] == {"amount": "1.00", "currency": "CNY"}


async def test_coupons_that_cannot_apply_are_refused_and_reserve_nothing(shop: Shop) -> None:
    coins, elsewhere = await shop.shelf.card_codes(5), await shop.shelf.card_codes(5)
    now = datetime.now(UTC)
    await campaign(shop, coins, code="ENDED2026", amountOff="1", endsAt=(now - timedelta(minutes=1)).isoformat())
    await campaign(shop, coins, code="LATER2026", amountOff="1", startsAt=(now + timedelta(hours=1)).isoformat())
    await campaign(shop, coins, code="MINIONLY", amountOff="1", channel="mini")
    await campaign(shop, elsewhere, code="OTHERSKU", amountOff="1")
    orders_before = await shop.ledger.order_count()

    refused = {code: await place(shop, (coins, 1), code=code)
               for code in ("ENDED2026", "LATER2026", "MINIONLY", "NOSUCHCODE", "OTHERSKU", "!!", "x" * 64)}

    assert {code: answer["userErrors"] for code, answer in refused.items()} == {
        "ENDED2026": [{"field": "couponCode", "message": "this coupon has ended", "code": "COUPON_UNAVAILABLE"}],
        "LATER2026": [{"field": "couponCode", "message": "this coupon cannot be used yet", "code": "COUPON_UNAVAILABLE"}],
        # Another channel's code reads exactly as a code that does not exist.
        "MINIONLY": [{"field": "couponCode", "message": "this coupon is not available", "code": "COUPON_UNAVAILABLE"}],
        "NOSUCHCODE": [{"field": "couponCode", "message": "this coupon is not available", "code": "COUPON_UNAVAILABLE"}],
        "OTHERSKU": [{"field": "couponCode", "message": "this coupon does not apply to these items", "code": "COUPON_UNAVAILABLE"}],
        "!!": [{"field": "couponCode", "message": "this coupon is not available", "code": "COUPON_UNAVAILABLE"}],
        "x" * 64: [{"field": "couponCode", "message": "this coupon is not available", "code": "COUPON_UNAVAILABLE"}],
    }
    assert all(answer["order"] is None for answer in refused.values())
    assert await shop.ledger.order_count() == orders_before
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 5}


async def test_a_code_longer_than_any_coupon_is_refused_before_it_is_read(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    given = {**order_input((coins, 1)), "couponCode": "A" * 100_000}

    answer = await shop.gql(PLACE, {"input": given})

    assert answer.get("data") is None or answer["data"]["placeOrder"] is None
    assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 1}


async def test_thirty_buyers_at_once_share_a_five_use_coupon_exactly(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(50)
    five = await campaign(shop, coins, code="FIRSTFIVE", amountOff="2", maxRedemptions=5)

    answers = await asyncio.gather(*(place(shop, (coins, 1), code="FIRSTFIVE", phone=f"1390000{n:04d}") for n in range(30)))

    assert Counter(outcome(a) for a in answers) == {"PLACED": 5, "COUPON_LIMIT": 25}
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 45, "RESERVED": 5}
    assert (await figures(shop, five["id"]))["redemptions"] == 5


async def test_a_budget_in_money_stops_the_coupon_before_it_is_overspent(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(20, price_fen=1000)
    budgeted = await campaign(shop, coins, code="BUDGET30", amountOff="4", budget="10.00")

    answers = await asyncio.gather(*(place(shop, (coins, 1), code="BUDGET30", phone=f"1370000{n:04d}") for n in range(6)))

    assert Counter(outcome(a) for a in answers) == {"PLACED": 2, "COUPON_LIMIT": 4}  # 4 + 4 ≤ 10 < 12
    assert (await figures(shop, budgeted["id"]))["spent"]["amount"] == "8.00"


# One phone, as five buyers might type it.
SPELLINGS = ["15899990000", "158 9999 0000", "+86 158-9999-0000", "0086 15899990000", "１５８９９９９００００"]


async def test_one_per_buyer_holds_across_spellings_of_one_phone_and_devices(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(20)
    await campaign(shop, coins, code="ONEEACH", amountOff="1", perBuyerLimit=1)

    answers = await asyncio.gather(*(place(shop, (coins, 1), code="ONEEACH", phone=phone) for phone in SPELLINGS * 2))
    same_device = [
        await place(shop, (coins, 1), code="ONEEACH", buyer={"phone": phone, "deviceId": device})
        for phone, device in (("13611110000", "farm-device"), ("13611112222", "FARM-DEVICE"))
    ]

    assert Counter(outcome(a) for a in answers) == {"PLACED": 1, "COUPON_LIMIT": 9}
    assert next(a for a in answers if a["userErrors"])["userErrors"] == [
        {"field": "couponCode", "message": "this coupon is limited to 1 per buyer", "code": "COUPON_LIMIT"},
    ]
    assert [outcome(a) for a in same_device] == ["PLACED", "COUPON_LIMIT"]
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 18, "RESERVED": 2}


async def test_a_cancelled_or_expired_order_gives_its_redemption_back_once(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(10)
    one = await campaign(shop, coins, code="ONLYONCE", amountOff="3", maxRedemptions=1, perBuyerLimit=1)
    first = await place(shop, (coins, 1), code="ONLYONCE")
    taken = await place(shop, (coins, 1), code="ONLYONCE", phone="13500000000")

    cancels = await asyncio.gather(*(
        shop.gql(CANCEL, {"id": first["order"]["id"]}, key=first["accessToken"]) for _ in range(3)
    ))
    after_cancel = await figures(shop, one["id"])
    again = await place(shop, (coins, 1), code="ONLYONCE")  # the same buyer: the limit was given back too
    async with shop.db.sessions() as session, session.begin():
        await session.execute(update(Order).where(Order.number == again["order"]["number"])
                              .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    await asyncio.gather(
        expire_once(shop.db, MemoryBroker()), shop.gql(CANCEL, {"id": again["order"]["id"]}, key=again["accessToken"]),
    )
    after_expiry = await figures(shop, one["id"])
    last = await place(shop, (coins, 1), code="ONLYONCE", phone="13500000000")

    assert outcome(taken) == "COUPON_LIMIT"
    assert sorted(c["data"]["cancelOrder"]["order"]["status"] for c in cancels) == ["CANCELLED"] * 3
    assert after_cancel["redemptions"] == 0 and after_cancel["spent"]["amount"] == "0.00"
    assert outcome(again) == "PLACED"
    assert after_expiry["redemptions"] == 0 and after_expiry["spent"]["amount"] == "0.00"
    assert outcome(last) == "PLACED"
    assert (await figures(shop, one["id"]))["redemptions"] == 1


async def test_a_price_below_the_floor_needs_a_subsidised_campaign(shop: Shop) -> None:
    cards = await shop.shelf.card_codes(5, price_fen=1000)
    floor = await shop.gql(FLOOR, {"input": {"skuId": cards.gid, "floor": "8.00"}}, key=shop.keys.admin)
    assert floor["data"]["setPriceControl"]["userErrors"] == []
    await campaign(shop, cards, code="HALFPRICE", price="5.00")
    await campaign(shop, cards, code="SUBSIDY5", price="5.00", subsidised=True, bearer="SUPPLIER")
    await campaign(shop, cards, code="TWOOFF", amountOff="2.00")

    below = await place(shop, (cards, 1), code="HALFPRICE")
    subsidised = await place(shop, (cards, 2), code="SUBSIDY5")
    at_floor = await place(shop, (cards, 1), code="TWOOFF")

    assert below["userErrors"] == [{
        "field": "couponCode", "message": "this coupon cannot take these items below their lowest allowed price",
        "code": "COUPON_UNAVAILABLE",
    }]
    assert subsidised["order"]["total"]["amount"] == "10.00"
    assert subsidised["order"]["discount"]["amount"] == "10.00"
    assert at_floor["order"]["total"]["amount"] == "8.00"
    assert await shop.ledger.codes(cards) == {"AVAILABLE": 2, "RESERVED": 3}


async def test_generated_codes_are_single_use_and_stored_only_as_digests(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(10)
    batch = await campaign(shop, coins, amountOff="1")
    generated = (await shop.gql(GENERATE, {"id": batch["id"], "count": 3}, key=shop.keys.admin))["data"]["generateCouponCodes"]
    codes = generated["codes"]

    first = await place(shop, (coins, 1), code=codes[0].lower().replace("-", " "))
    reused = await place(shop, (coins, 1), code=codes[0], phone="13300000000")
    racing = await asyncio.gather(*(place(shop, (coins, 1), code=codes[1], phone=f"1330000{n:04d}") for n in range(5)))
    async with shop.db.sessions() as session:
        digests = list(await session.scalars(select(CouponCode.digest).where(CouponCode.single_use)))
        tags = list(await session.scalars(select(Order.coupon_code).where(Order.coupon_code.is_not(None))))
        facts = list(await session.scalars(text("SELECT CAST(facts AS TEXT) FROM risk_verdict")))

    assert generated["userErrors"] == [] and len(set(codes)) == 3
    assert all(len(code) == 19 and set(code) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ-") for code in codes)
    assert outcome(first) == "PLACED"
    assert first["order"]["couponCode"].startswith("#")
    assert reused["userErrors"] == [{"field": "couponCode", "message": "this coupon has already been used", "code": "COUPON_UNAVAILABLE"}]
    assert Counter(outcome(a) for a in racing) == {"PLACED": 1, "COUPON_UNAVAILABLE": 4}
    stored = " ".join(digests + tags + facts)
    assert not any(code.replace("-", "") in stored.replace("-", "") for code in codes)


async def test_only_operators_manage_campaigns(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    given = {"name": "partner's own", "channel": "taobao", "skuIds": [coins.gid], "amountOff": "1", "code": "FREEBIE"}

    answers = [await shop.gql(CREATE, {"input": given}, key=key) for key in (shop.keys.taobao, shop.keys.web, None)]

    assert [a["errors"][0]["extensions"]["code"] for a in answers] == ["FORBIDDEN", "FORBIDDEN", "UNAUTHENTICATED"]


async def test_a_campaign_an_operator_cannot_create_is_refused_field_by_field(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(1)
    cases = [
        ({"amountOff": "1", "percentOff": 10}, "amountOff"),
        ({}, "amountOff"),
        ({"percentOff": 101}, "percentOff"),
        ({"amountOff": "1", "maxDiscount": "5"}, "maxDiscount"),
        ({"amountOff": "0"}, "amountOff"),
        ({"amountOff": "1", "code": "AB"}, "code"),
        ({"amountOff": "1", "maxRedemptions": 0}, "maxRedemptions"),
        ({"amountOff": "1", "startsAt": "2026-12-02T00:00:00+08:00", "endsAt": "2026-12-01T00:00:00+08:00"}, "endsAt"),
    ]
    answers = []
    for fields, _ in cases:
        given = {"name": "bad", "channel": "web", "skuIds": [coins.gid], **fields}
        answers.append((await shop.gql(CREATE, {"input": given}, key=shop.keys.admin))["data"]["createCampaign"])
    await campaign(shop, coins, code="TAKENCODE", amountOff="1")
    taken = await shop.gql(CREATE, {"input": {"name": "again", "channel": "mini", "skuIds": [coins.gid],
                                              "amountOff": "1", "code": "takencode"}}, key=shop.keys.admin)

    assert [(a["campaign"], [e["field"] for e in a["userErrors"]]) for a in answers] == [(None, [f]) for _, f in cases]
    assert taken["data"]["createCampaign"]["userErrors"][0]["field"] == "code"


async def test_campaign_figures_show_discount_revenue_and_orders(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(10, price_fen=2000)
    roi = await campaign(shop, coins, code="ROI2026", amountOff="5")
    orders = [await place(shop, (coins, 1), code="ROI2026", phone=f"1320000{n:04d}") for n in range(3)]
    await shop.gql(PAY, {"id": orders[0]["order"]["id"], "reference": "pay-roi-1"}, key=shop.keys.admin)
    await shop.gql(CANCEL, {"id": orders[2]["order"]["id"]}, key=orders[2]["accessToken"])

    now = datetime.now(UTC)
    sales = await shop.gql(SALES, {"from": (now - timedelta(hours=2)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()},
                           key=shop.keys.admin)

    # The only paid order of this shop so far: 20.00 less 5.00.
    assert [(b["revenue"]["amount"], b["discounts"]["amount"]) for b in sales["data"]["salesSummary"] if b["paidOrders"]] == [
        ("15.00", "5.00"),
    ]
    assert await figures(shop, roi["id"]) == {
        "redemptions": 2, "spent": {"amount": "10.00", "currency": "CNY"},
        "performance": {"orders": 2, "discountGiven": {"amount": "10.00"}, "paidOrders": 1,
                        "revenue": {"amount": "15.00"}, "revenuePerDiscount": "3.00"},
    }


RULE = """
mutation Rule($input: CreateRiskRuleInput!) { createRiskRule(input: $input) { rule { id } userErrors { field code } } }
"""
ARCHIVE = "mutation Archive($id: ID!) { archiveRiskRule(id: $id) { userErrors { code } } }"


async def test_a_risk_rule_as_data_stops_one_device_redeeming_for_many_new_accounts(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(20)
    await campaign(shop, coins, code="NEWUSER8", amountOff="8")
    rule = (await shop.gql(RULE, {"input": {
        "name": "one device, many new accounts redeeming", "kind": "ACCOUNT_SPREAD", "action": "REJECT",
        "parameters": {"by": "DEVICE", "maxAccounts": 2, "windowSeconds": 3600, "couponOnly": True},
    }}, key=shop.keys.admin))["data"]["createRiskRule"]

    def on_farm(n: int) -> dict[str, Any]:
        return {"email": f"new{n}@example.cn", "deviceId": "coupon-farm-1"}

    redeeming = [outcome(await place(shop, (coins, 1), code="newuser8", buyer=on_farm(n))) for n in range(4)]
    without_coupon = outcome(await place(shop, (coins, 1), code=None, buyer=on_farm(9)))
    await shop.gql(ARCHIVE, {"id": rule["rule"]["id"]}, key=shop.keys.admin)

    assert rule["userErrors"] == []
    assert redeeming == ["PLACED", "PLACED", "RISK_REJECTED", "RISK_REJECTED"]
    assert without_coupon == "PLACED"  # the rule is about coupons


async def test_a_retry_with_the_coupon_in_another_spelling_is_the_same_order_and_redeems_once(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(5)
    once = await campaign(shop, coins, code="RETRY-ME", amountOff="1")
    given = order_input((coins, 1), key="coupon-retry-order-0001", buyer={"phone": "13122223333"})

    first = await shop.gql(PLACE, {"input": {**given, "couponCode": "RETRY-ME"}})
    retried = await shop.gql(PLACE, {"input": {**given, "couponCode": "retry me"}})
    other = await shop.gql(PLACE, {"input": {**given, "couponCode": None}})

    assert retried["data"]["placeOrder"]["order"]["number"] == first["data"]["placeOrder"]["order"]["number"]
    assert other["data"]["placeOrder"]["userErrors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert (await figures(shop, once["id"]))["redemptions"] == 1


async def test_a_buyer_guessing_codes_is_stopped_even_when_a_guess_would_match(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(5)
    await campaign(shop, coins, code="REALCODE77", amountOff="1")
    guesser = {"phone": "13177770000", "deviceId": "guessing-bot"}

    misses = [await place(shop, (coins, 1), code=f"REALCODE{n:02d}", buyer=guesser) for n in range(10)]
    lucky = await place(shop, (coins, 1), code="REALCODE77", buyer=guesser)
    same_device = await place(shop, (coins, 1), code="REALCODE77", buyer={"phone": "13177771111", "deviceId": "Guessing-Bot"})
    someone_else = await place(shop, (coins, 1), code="REALCODE77", buyer={"phone": "13177772222"})

    assert {m["userErrors"][0]["message"] for m in misses} == {"this coupon is not available"}
    assert lucky["userErrors"] == [
        {"field": "couponCode", "message": "too many coupon codes tried; try again later", "code": "COUPON_UNAVAILABLE"},
    ]
    assert outcome(same_device) == "COUPON_UNAVAILABLE"  # the device is the same buyer, however spelled
    assert outcome(someone_else) == "PLACED"
    assert await shop.ledger.codes(coins) == {"AVAILABLE": 4, "RESERVED": 1}


END = "mutation End($id: ID!) { endCampaign(id: $id) { campaign { active redemptions } userErrors { field code } } }"


async def test_an_ended_campaign_is_refused_and_its_orders_keep_their_discount(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(5)
    ending = await campaign(shop, coins, code="ENDSOON", amountOff="2")
    kept = await place(shop, (coins, 1), code="ENDSOON", phone="13188880000")

    ended = (await shop.gql(END, {"id": ending["id"]}, key=shop.keys.admin))["data"]["endCampaign"]
    late = await place(shop, (coins, 1), code="ENDSOON", phone="13188881111")
    by_partner = await shop.gql(END, {"id": ending["id"]}, key=shop.keys.taobao)

    assert ended == {"campaign": {"active": False, "redemptions": 1}, "userErrors": []}
    assert late["userErrors"] == [{"field": "couponCode", "message": "this coupon has ended", "code": "COUPON_UNAVAILABLE"}]
    assert kept["order"]["discount"]["amount"] == "2.00"
    assert by_partner["errors"][0]["extensions"]["code"] == "FORBIDDEN"
