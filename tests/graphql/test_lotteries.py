"""Lotteries through the real endpoint: an operator creates one with its prize; buyers enter within
the window and the per-buyer limit (however the phone is spelled, however many at once), past the
risk check; the draw runs once on the job queue at the set time, from the seed committed at
creation; winners read their prize by their entry token, losers their loss."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select, update

from gateway import create_app
from models import CouponCode, Job, Lottery, LotteryEntry
from schema.relay import decode_pk
from services.core.secret_box import SecretBox
from services.lotteries import draw as lotteries
from tests.e2e.shop import StockedSku, order_input
from tests.graphql.selling_shop import SellingShop, open_selling_shop
from tests.graphql.draws_support import verify_draws

CREATE = """
mutation Create($input: CreateLotteryInput!) {
  createLottery(input: $input) {
    lottery { id name status entryCount winners commitment seed winningNumbers prize }
    userErrors { field message code }
  }
}
"""
ENTER = """
mutation Enter($input: EnterLotteryInput!) {
  enterLottery(input: $input) { entry { number status } token userErrors { field message code } }
}
"""
LOTTERY = "query L($id: ID!) { lottery(id: $id) { id status entryCount winners commitment seed winningNumbers } }"
ENTRY = "query E($token: String!) { lotteryEntry(token: $token) { number status prize lottery { status } } }"
DRAW = "mutation D($id: ID!) { drawLottery(id: $id) { lottery { status winningNumbers } userErrors { code } } }"
CAMPAIGN = """
mutation C($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } userErrors { code } } }
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { discount { amount } } userErrors { code } }
}
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SellingShop]:
    async with open_selling_shop(tmp_path_factory.mktemp("lotteries")) as opened:
        yield opened


async def coupon_campaign(shop: SellingShop, sku: StockedSku) -> str:
    answer = await shop.gql(CAMPAIGN, {"input": {"name": "抽奖券", "channel": "web", "skuIds": [sku.gid], "amountOff": "3"}},
                            key=shop.keys.admin)
    return answer["data"]["createCampaign"]["campaign"]["id"]


async def new_lottery(shop: SellingShop, **fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    given = {
        "name": "双十二抽奖", "channel": "web", "opensAt": (now - timedelta(minutes=1)).isoformat(),
        "closesAt": (now + timedelta(hours=1)).isoformat(), "drawAt": (now + timedelta(hours=1)).isoformat(),
        "winners": 2, "perBuyerLimit": 1, **fields,
    }
    if "campaignId" not in given and "prizeSkuId" not in given:
        given["prizeSkuId"] = (await shop.sealed_codes(5)).gid
    answer = (await shop.gql(CREATE, {"input": given}, key=shop.keys.admin))["data"]["createLottery"]
    assert answer["userErrors"] == [], answer
    return answer["lottery"]


async def enter(shop: SellingShop, lottery: dict[str, Any], **buyer: str) -> dict[str, Any]:
    answer = await shop.gql(ENTER, {"input": {"lotteryId": lottery["id"], "buyer": buyer}})
    return answer["data"]["enterLottery"]


def outcome(entered: dict[str, Any]) -> str:
    return entered["userErrors"][0]["code"] if entered["userErrors"] else "ENTERED"


async def due_now(shop: SellingShop, lottery: dict[str, Any]) -> None:
    """Entries closed and the draw time come: as if the clock had moved on."""
    pk = decode_pk(lottery["id"], "Lottery")
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with shop.db.sessions() as session, session.begin():
        await session.execute(update(Lottery).where(Lottery.id == pk).values(closes_at=past, draw_at=past))
        await session.execute(update(Job).where(Job.key == f"lottery-draw:{pk}").values(run_after=past))


def outsider_winners(seed: bytes, label: str, count: int, entries: int) -> list[int]:
    """docs/draws.md, written again from the text."""
    left, drawn = list(range(1, entries + 1)), []
    for i in range(min(count, entries)):
        bound, k = len(left), 0
        while True:
            x = int.from_bytes(hmac.new(seed, f"{label}:{i}:{k}".encode(), hashlib.sha256).digest()[:8], "big")
            if x < 2**64 - 2**64 % bound:
                break
            k += 1
        drawn.append(left.pop(x % bound))
    return drawn


async def test_entries_are_limited_per_buyer_however_the_phone_is_spelled(shop: SellingShop) -> None:
    lottery = await new_lottery(shop, perBuyerLimit=2)

    spelled = [await enter(shop, lottery, phone=phone)
               for phone in ("13800138000", "+86 138-0013-8000", "８６１３８００１３８０００", "13900139000")]

    assert [outcome(e) for e in spelled] == ["ENTERED", "ENTERED", "ENTRY_LIMIT", "ENTERED"]
    assert [e["entry"]["number"] for e in spelled if e["entry"]] == [1, 2, 3]
    assert spelled[0]["token"].startswith("le_")
    # The same device under another phone is the same buyer too.
    assert outcome(await enter(shop, lottery, phone="13700137000", deviceId="dev-1")) == "ENTERED"
    assert outcome(await enter(shop, lottery, phone="13600136000", deviceId="DEV-1")) == "ENTERED"
    assert outcome(await enter(shop, lottery, phone="13500135000", deviceId="dev-1")) == "ENTRY_LIMIT"


async def test_concurrent_entries_of_one_buyer_stop_at_the_limit(shop: SellingShop) -> None:
    lottery = await new_lottery(shop, perBuyerLimit=3)

    answers = await asyncio.gather(*(enter(shop, lottery, phone="13800138001") for _ in range(20)))

    assert Counter(outcome(a) for a in answers) == {"ENTERED": 3, "ENTRY_LIMIT": 17}
    read = (await shop.gql(LOTTERY, {"id": lottery["id"]}))["data"]["lottery"]
    assert read["entryCount"] == 3
    assert sorted(a["entry"]["number"] for a in answers if a["entry"]) == [1, 2, 3]


async def test_a_risk_rejected_buyer_and_entries_outside_the_window_are_refused(shop: SellingShop) -> None:
    lottery = await new_lottery(shop)
    later = await new_lottery(shop, opensAt=(datetime.now(UTC) + timedelta(minutes=5)).isoformat())

    rejected = await enter(shop, lottery, phone="13000000000")  # the demo's blacklisted phone
    early = await enter(shop, later, phone="13800138002")
    no_contact = await enter(shop, lottery)

    assert (outcome(rejected), outcome(early), outcome(no_contact)) == ("RISK_REJECTED", "LOTTERY_CLOSED", "CONTACT_REQUIRED")
    assert (await shop.gql(LOTTERY, {"id": lottery["id"]}))["data"]["lottery"]["entryCount"] == 0


async def test_only_operators_create_lotteries_and_bad_ones_are_refused(shop: SellingShop) -> None:
    sku = await shop.sealed_codes(1)
    now = datetime.now(UTC)
    base = {"name": "x", "channel": "web", "opensAt": now.isoformat(), "closesAt": (now + timedelta(hours=1)).isoformat(),
            "drawAt": (now + timedelta(hours=1)).isoformat(), "winners": 1, "prizeSkuId": sku.gid}
    partner = await shop.gql(CREATE, {"input": base}, key=shop.keys.taobao)
    refused = {
        why: (await shop.gql(CREATE, {"input": {**base, **change}}, key=shop.keys.admin))["data"]["createLottery"]["userErrors"][0]["code"]
        for why, change in {
            "draw before close": {"drawAt": now.isoformat()},
            "no winners": {"winners": 0},
            "no prize": {"prizeSkuId": None},
            "two prizes": {"campaignId": await coupon_campaign(shop, sku)},
            "unknown channel": {"channel": "nowhere"},
            "limit too high": {"perBuyerLimit": 101},
        }.items()
    }

    assert partner["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert refused == {
        "draw before close": "INVALID_INPUT", "no winners": "INVALID_INPUT", "no prize": "INVALID_INPUT",
        "two prizes": "INVALID_INPUT", "unknown channel": "UNKNOWN_CHANNEL", "limit too high": "INVALID_INPUT",
    }


async def test_the_draw_runs_at_its_time_on_the_queue_verifies_and_pays_winners_a_working_coupon(
    shop: SellingShop, tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sku = await shop.sealed_codes(10)
    lottery = await new_lottery(shop, winners=3, campaignId=await coupon_campaign(shop, sku))
    entries = [await enter(shop, lottery, phone=f"1580015{n:04d}") for n in range(8)]
    published = (await shop.gql(LOTTERY, {"id": lottery["id"]}))["data"]["lottery"]
    assert published["seed"] is None and published["winningNumbers"] is None
    before = await shop.gql(DRAW, {"id": lottery["id"]}, key=shop.keys.admin)
    assert before["data"]["drawLottery"]["userErrors"] == [{"code": "NOT_DUE"}]
    read_before = [await read_entry(shop, e["token"]) for e in entries]
    assert {r["status"] for r in read_before} == {"ENTERED"}
    seed_hex = await secret_seed(shop, lottery)
    assert seed_hex not in str([lottery, entries, published, before, read_before]) and seed_hex not in caplog.text

    await due_now(shop, lottery)
    await shop.fulfil()

    drawn = (await shop.gql(LOTTERY, {"id": lottery["id"]}))["data"]["lottery"]
    assert drawn["status"] == "DRAWN" and drawn["seed"] == seed_hex
    seed = bytes.fromhex(drawn["seed"])
    assert hashlib.sha256(seed).hexdigest() == drawn["commitment"] == lottery["commitment"]
    pk = decode_pk(lottery["id"], "Lottery")
    assert drawn["winningNumbers"] == outsider_winners(seed, f"lottery:{pk}", 3, 8)
    # The shipped verifier agrees from the saved answer alone, and catches a winner swapped.
    saved = tmp_path / "lottery.json"
    saved.write_text(json.dumps({"data": {"lottery": drawn}}))
    assert verify_draws(saved)[0] == 0
    saved.write_text(json.dumps({"data": {"lottery": {**drawn, "winningNumbers": [9, *drawn["winningNumbers"][1:]]}}}))
    assert verify_draws(saved)[0] == 1
    read = {e["entry"]["number"]: await read_entry(shop, e["token"]) for e in entries}
    assert {n for n, r in read.items() if r["status"] == "WON"} == set(drawn["winningNumbers"])
    assert Counter(r["status"] for r in read.values()) == {"WON": 3, "LOST": 5}
    assert all(r["prize"] is None for r in read.values() if r["status"] == "LOST")
    # A winner's coupon takes its amount off an order, once.
    prize = next(r["prize"] for r in read.values() if r["status"] == "WON")
    used = await shop.gql(PLACE, {"input": {**order_input((sku, 1), buyer={"phone": "13800138077"}), "couponCode": prize}})
    again = await shop.gql(PLACE, {"input": {**order_input((sku, 1), buyer={"phone": "13800138078"}), "couponCode": prize}})
    assert used["data"]["placeOrder"] == {"order": {"discount": {"amount": "3.00"}}, "userErrors": []}
    assert again["data"]["placeOrder"]["userErrors"][0]["code"] == "COUPON_UNAVAILABLE"
    # Entries are closed once drawn.
    assert outcome(await enter(shop, lottery, phone="13800138099")) == "LOTTERY_CLOSED"


async def secret_seed(shop: SellingShop, lottery: dict[str, Any]) -> str:
    """The seed as only the server can read it: to look for it where it must not be."""
    pk = decode_pk(lottery["id"], "Lottery")
    async with shop.db.sessions() as session:
        row = await session.get_one(Lottery, pk)
    return SecretBox(shop.settings.secret_key).open(row.seed_ciphertext, context=f"lottery:{pk}".encode())


async def read_entry(shop: SellingShop, token: str) -> dict[str, Any]:
    return (await shop.gql(ENTRY, {"token": token}))["data"]["lotteryEntry"]


async def test_a_draw_raced_by_two_gateways_workers_and_an_operator_happens_once(shop: SellingShop) -> None:
    prize = await shop.sealed_codes(5)
    lottery = await new_lottery(shop, winners=2, prizeSkuId=prize.gid)
    entries = [await enter(shop, lottery, phone=f"1590015{n:04d}") for n in range(6)]
    await due_now(shop, lottery)
    pk = decode_pk(lottery["id"], "Lottery")
    seeds = SecretBox(shop.settings.secret_key)

    async def by_process() -> list[int] | None:
        async with shop.db.sessions() as session, session.begin():
            return await lotteries.draw(session, seeds, pk, datetime.now(UTC))

    # A second gateway on the same database: its own engine, its own job worker.
    other = create_app(shop.settings)
    async with LifespanManager(other):
        raced = await asyncio.gather(
            by_process(), by_process(), shop.gql(DRAW, {"id": lottery["id"]}, key=shop.keys.admin), shop.fulfil(),
            other.state.worker.drain(), return_exceptions=True,
        )

    assert not [r for r in raced if isinstance(r, BaseException)], raced
    drawn = (await shop.gql(LOTTERY, {"id": lottery["id"]}))["data"]["lottery"]
    assert [r for r in raced[:2] if r is not None] in ([], [drawn["winningNumbers"]])
    assert await shop.ledger.codes(prize) == {"SOLD": 2, "AVAILABLE": 3}
    read = [await read_entry(shop, e["token"]) for e in entries]
    won = [r for r in read if r["status"] == "WON"]
    assert sorted(r["number"] for r in won) == sorted(drawn["winningNumbers"])
    assert all(r["prize"] and r["prize"].startswith(f"SEALED-{prize.pk}-") for r in won)
    async with shop.db.sessions() as session:
        decided = await session.scalar(
            select(func.count()).select_from(LotteryEntry).where(LotteryEntry.lottery_id == pk, LotteryEntry.status != "ENTERED"))
        assert decided == 6
        assert await session.scalar(select(func.count()).select_from(CouponCode).where(CouponCode.campaign_id.is_(None))) == 0
