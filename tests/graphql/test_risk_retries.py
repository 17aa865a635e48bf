"""An idempotent retry is a retry under risk rules too: the same answer, counted once.

A buyer's app that times out sends the same placeOrder again, often several times at once.
Each retry must get the order its key holds (or is placing), and no risk counter may count it
again: otherwise the retries themselves trip a velocity rule and eat the buyer's allowance.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { number status } accessToken userErrors { field code } }
}
"""
CREATE = """
mutation Create($input: CreateRiskRuleInput!) { createRiskRule(input: $input) { rule { id } userErrors { field code } } }
"""
ARCHIVE = "mutation Archive($id: ID!) { archiveRiskRule(id: $id) { userErrors { code } } }"
VERDICTS = """
query Verdicts($first: Int) {
  riskVerdicts(decision: REJECT, first: $first) { edges { node { idempotencyKey reasons { observed } } } }
}
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("risk-retries")) as opened:
        yield opened


@pytest.fixture(scope="module")
async def coins(shop: Shop) -> StockedSku:
    return await shop.shelf.card_codes(100)


@pytest.fixture
async def rule(shop: Shop, request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """The rule the test names, for the test's length only."""
    given = request.param
    answer = await shop.gql(CREATE, {"input": {"name": uuid.uuid4().hex, "action": "REJECT", **given}}, key=shop.keys.admin)
    created = answer["data"]["createRiskRule"]
    assert created["userErrors"] == [], answer
    yield
    await shop.gql(ARCHIVE, {"id": created["rule"]["id"]}, key=shop.keys.admin)


def fresh_phone() -> str:
    return f"136{uuid.uuid4().int % 10**8:08d}"


async def place(shop: Shop, given: dict[str, Any]) -> dict[str, Any]:
    return (await shop.gql(PLACE, {"input": given}))["data"]["placeOrder"]


def outcome(placed: dict[str, Any]) -> str:
    return placed["order"]["status"] if placed["order"] else placed["userErrors"][0]["code"]


THREE_PER_PHONE = {"kind": "VELOCITY", "parameters": {"dimension": "PHONE", "limit": 3, "windowSeconds": 3600}}


@pytest.mark.parametrize("rule", [THREE_PER_PHONE], indirect=True, ids=["rule"])
async def test_ten_concurrent_retries_of_one_key_get_one_order_and_count_once(
    shop: Shop, coins: StockedSku, rule: None
) -> None:
    phone = fresh_phone()
    given = order_input((coins, 1), buyer={"phone": phone})
    orders_before = await shop.ledger.order_count()

    answers = await asyncio.gather(*(place(shop, given) for _ in range(10)))
    # The phone's allowance is 3: the retries took one, so two more orders pass and the next is refused.
    later = [outcome(await place(shop, order_input((coins, 1), buyer={"phone": phone}))) for _ in range(3)]

    assert answers[0]["userErrors"] == [] and answers[0]["order"]["status"] == "PENDING_PAYMENT"
    assert [answer == answers[0] for answer in answers] == [True] * 10
    assert await shop.ledger.order_count() == orders_before + 3
    assert later == ["PENDING_PAYMENT", "PENDING_PAYMENT", "RISK_REJECTED"]


@pytest.mark.parametrize("rule", [{"kind": "VELOCITY", "parameters": {"dimension": "PHONE", "limit": 1, "windowSeconds": 3600}}], indirect=True, ids=["rule"])
async def test_a_refused_attempt_retried_is_refused_again_without_raising_the_count(
    shop: Shop, coins: StockedSku, rule: None
) -> None:
    phone = fresh_phone()
    first = await place(shop, order_input((coins, 1), buyer={"phone": phone}))
    refused = order_input((coins, 1), buyer={"phone": phone})

    retries = await asyncio.gather(*(place(shop, refused) for _ in range(5)))
    verdicts = await shop.gql(VERDICTS, {"first": 5}, key=shop.keys.admin)

    assert outcome(first) == "PENDING_PAYMENT"
    assert [outcome(retry) for retry in retries] == ["RISK_REJECTED"] * 5
    # Every retry saw the count of the first try of its key: the order before it and itself.
    assert [edge["node"] for edge in verdicts["data"]["riskVerdicts"]["edges"]] == [
        {"idempotencyKey": refused["idempotencyKey"], "reasons": [{"observed": "2 orders by PHONE in 3600s"}]}
    ] * 5


@pytest.mark.parametrize("rule", [{"kind": "ACCOUNT_SPREAD", "parameters": {"by": "DEVICE", "maxAccounts": 2, "windowSeconds": 3600}}], indirect=True, ids=["rule"])
async def test_a_new_account_refused_for_its_device_stays_refused_when_it_retries(
    shop: Shop, coins: StockedSku, rule: None
) -> None:
    device = f"farm-{uuid.uuid4().hex[:8]}"

    def by(email: str) -> dict[str, Any]:
        return order_input((coins, 1), buyer={"email": email, "deviceId": device})

    allowed = [outcome(await place(shop, by(f"{uuid.uuid4().hex[:8]}@example.cn"))) for _ in range(2)]
    third = by(f"{uuid.uuid4().hex[:8]}@example.cn")
    first_try = await place(shop, third)
    retries = await asyncio.gather(*(place(shop, third) for _ in range(3)))
    again = await place(shop, third)

    assert allowed == ["PENDING_PAYMENT"] * 2
    assert [outcome(answer) for answer in (first_try, *retries, again)] == ["RISK_REJECTED"] * 5


@pytest.mark.parametrize("rule", [THREE_PER_PHONE], indirect=True, ids=["rule"])
async def test_a_retry_after_the_order_is_placed_is_not_counted(shop: Shop, coins: StockedSku, rule: None) -> None:
    phone = fresh_phone()
    given = order_input((coins, 1), buyer={"phone": phone})

    first = await place(shop, given)
    retries = [await place(shop, given) for _ in range(4)]
    later = [outcome(await place(shop, order_input((coins, 1), buyer={"phone": phone}))) for _ in range(3)]

    assert retries == [first] * 4
    assert later == ["PENDING_PAYMENT", "PENDING_PAYMENT", "RISK_REJECTED"]
