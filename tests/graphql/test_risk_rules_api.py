"""Operators edit risk rules through the API; each change applies to the next order and is audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

CREATE = """
mutation Create($input: CreateRiskRuleInput!) {
  createRiskRule(input: $input) {
    rule { id name kind parameters action score channel enabled archived }
    userErrors { field code }
  }
}
"""
UPDATE = """
mutation Update($id: ID!, $input: UpdateRiskRuleInput!) {
  updateRiskRule(id: $id, input: $input) { rule { parameters action score channel } userErrors { field code } }
}
"""
ENABLE = """
mutation Enable($id: ID!, $enabled: Boolean!) {
  setRiskRuleEnabled(id: $id, enabled: $enabled) { rule { enabled } userErrors { field code } }
}
"""
ARCHIVE = """
mutation Archive($id: ID!) { archiveRiskRule(id: $id) { rule { archived enabled } userErrors { field code } } }
"""
RULES = "query { riskRules { name } }"
CHANGES = """
query Changes($id: ID) {
  riskRuleChanges(ruleId: $id) { edges { node { ruleName change actor before after } } }
}
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { status } userErrors { field message code } }
}
"""
VERDICTS = """
query Verdicts($decision: RiskDecision) {
  riskVerdicts(decision: $decision, first: 1) {
    edges { node { decision score channel reasons { rule observed threshold } order { number } } }
  }
}
"""
AMOUNT_OVER_50 = {"name": "over 50 on web", "kind": "AMOUNT_LIMIT", "parameters": {"max": "50.00"}, "action": "REJECT", "channel": "web"}


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("risk-rules")) as opened:
        yield opened


@pytest.fixture(scope="module")
async def coins(shop: Shop) -> StockedSku:
    return await shop.shelf.card_codes(50, price_fen=4000)


async def create(shop: Shop, rule: dict[str, Any]) -> dict[str, Any]:
    answer = await shop.gql(CREATE, {"input": rule}, key=shop.keys.admin)
    return answer["data"]["createRiskRule"]


async def place(shop: Shop, sku: StockedSku, quantity: int) -> dict[str, Any]:
    return (await shop.gql(PLACE, {"input": order_input((sku, quantity))}))["data"]["placeOrder"]


async def test_a_new_rule_applies_to_the_next_order_and_its_edits_at_once(shop: Shop, coins: StockedSku) -> None:
    created = await create(shop, AMOUNT_OVER_50)
    rule_id = created["rule"]["id"]
    over = await place(shop, coins, 2)  # 80.00

    raised = await shop.gql(UPDATE, {"id": rule_id, "input": {"parameters": {"max": "100.00"}}}, key=shop.keys.admin)
    under_new_limit = await place(shop, coins, 2)
    await shop.gql(ENABLE, {"id": rule_id, "enabled": False}, key=shop.keys.admin)
    disabled = await place(shop, coins, 3)  # 120.00
    await shop.gql(ENABLE, {"id": rule_id, "enabled": True}, key=shop.keys.admin)
    enabled = await place(shop, coins, 3)
    await shop.gql(ARCHIVE, {"id": rule_id}, key=shop.keys.admin)
    archived = await place(shop, coins, 3)

    assert created == {"rule": {"id": rule_id, "name": "over 50 on web", "kind": "AMOUNT_LIMIT", "parameters": {"max": "50.00"},
                                "action": "REJECT", "score": 100, "channel": "web", "enabled": True, "archived": False},
                       "userErrors": []}
    # The buyer hears that the order was refused, never which rule refused it.
    assert over == {"order": None, "userErrors": [
        {"field": None, "message": "this order cannot be accepted; contact the shop if you think this is a mistake", "code": "RISK_REJECTED"}]}
    assert raised["data"]["updateRiskRule"] == {"rule": {"parameters": {"max": "100.00"}, "action": "REJECT", "score": 100, "channel": "web"}, "userErrors": []}
    assert [o["order"]["status"] if o["order"] else o["userErrors"][0]["code"] for o in (under_new_limit, disabled, enabled, archived)] == [
        "PENDING_PAYMENT", "PENDING_PAYMENT", "RISK_REJECTED", "PENDING_PAYMENT"]


async def test_an_operator_reads_why_an_attempt_was_rejected(shop: Shop, coins: StockedSku) -> None:
    rule = await create(shop, {**AMOUNT_OVER_50, "name": "over 50, read back"})
    await place(shop, coins, 2)
    await shop.gql(ARCHIVE, {"id": rule["rule"]["id"]}, key=shop.keys.admin)

    answer = await shop.gql(VERDICTS, {"decision": "REJECT"}, key=shop.keys.admin)

    assert answer == {"data": {"riskVerdicts": {"edges": [{"node": {
        "decision": "REJECT", "score": 100, "channel": "web", "order": None,
        "reasons": [{"rule": "over 50, read back", "observed": "80.00 CNY", "threshold": "50.00 CNY"}],
    }}]}}}


async def test_every_change_is_recorded_with_who_before_and_after(shop: Shop) -> None:
    created = await create(shop, {"name": "qty", "kind": "QUANTITY_LIMIT", "parameters": {"max": 100}, "action": "REVIEW"})
    rule_id = created["rule"]["id"]
    await shop.gql(UPDATE, {"id": rule_id, "input": {"action": "REJECT"}}, key=shop.keys.admin)
    await shop.gql(ENABLE, {"id": rule_id, "enabled": False}, key=shop.keys.admin)
    await shop.gql(ARCHIVE, {"id": rule_id}, key=shop.keys.admin)

    answer = await shop.gql(CHANGES, {"id": rule_id}, key=shop.keys.admin)

    actor = f"admin:{shop.keys.prefix(shop.keys.admin)}"
    first = {"name": "qty", "kind": "QUANTITY_LIMIT", "parameters": {"max": 100}, "action": "REVIEW", "score": 50,
             "channel": None, "enabled": True, "archived": False}
    rejecting = {**first, "action": "REJECT", "score": 100}
    off = {**rejecting, "enabled": False}
    assert [e["node"] for e in answer["data"]["riskRuleChanges"]["edges"]] == [
        {"ruleName": "qty", "change": "ARCHIVED", "actor": actor, "before": off, "after": {**off, "archived": True}},
        {"ruleName": "qty", "change": "DISABLED", "actor": actor, "before": rejecting, "after": off},
        {"ruleName": "qty", "change": "UPDATED", "actor": actor, "before": first, "after": rejecting},
        {"ruleName": "qty", "change": "CREATED", "actor": actor, "before": None, "after": first},
    ]


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"kind": "VELOCITY", "parameters": {"dimension": "IP", "limit": 0, "windowSeconds": 60}, "action": "REJECT"},
         {"field": "parameters.limit", "code": "INVALID_PARAMETERS"}),
        ({"kind": "BLACKLIST", "parameters": {"dimension": "IP", "values": ["10.0.0.300"]}, "action": "REJECT"},
         {"field": "parameters.values.0", "code": "INVALID_PARAMETERS"}),
        ({"kind": "AMOUNT_LIMIT", "parameters": {"max": "10"}, "action": "PASS"}, {"field": "action", "code": "INVALID_INPUT"}),
        ({"kind": "AMOUNT_LIMIT", "parameters": {"max": "10"}, "action": "REJECT", "channel": "nowhere"},
         {"field": "channel", "code": "UNKNOWN_CHANNEL"}),
        ({"kind": "AMOUNT_LIMIT", "parameters": {"max": "10"}, "action": "REJECT", "score": 101}, {"field": "score", "code": "INVALID_INPUT"}),
        ({"name": "virtual-operator phone", "kind": "AMOUNT_LIMIT", "parameters": {"max": "10"}, "action": "REJECT"},
         {"field": "name", "code": "DUPLICATE_NAME"}),
    ],
)
async def test_a_bad_rule_is_refused_with_the_field_at_fault(shop: Shop, rule: dict[str, Any], error: dict[str, str]) -> None:
    assert await create(shop, {"name": "bad", **rule}) == {"rule": None, "userErrors": [error]}


async def test_only_operators_read_and_edit_rules(shop: Shop) -> None:
    for key in (shop.keys.taobao, shop.keys.web, None):
        read = await shop.gql(RULES, key=key)
        edit = await shop.gql(CREATE, {"input": AMOUNT_OVER_50}, key=key)
        expected = "UNAUTHENTICATED" if key is None else "FORBIDDEN"
        assert [read["data"], read["errors"][0]["extensions"]["code"]] == [None, expected]
        assert [edit["data"], edit["errors"][0]["extensions"]["code"]] == [None, expected]


async def test_one_device_behind_many_new_accounts_is_stopped_and_old_accounts_do_not_count(
    shop: Shop, coins: StockedSku
) -> None:
    async def attempt(email: str, device: str) -> str:
        given = order_input((coins, 1), buyer={"email": email, "deviceId": device})
        placed = (await shop.gql(PLACE, {"input": given}))["data"]["placeOrder"]
        return placed["order"]["status"] if placed["order"] else placed["userErrors"][0]["code"]

    regular = await attempt("regular@example.cn", "own-phone")  # an account that has ordered before
    rule = await create(shop, {"name": "two new accounts per device", "kind": "ACCOUNT_SPREAD", "action": "REJECT",
                               "parameters": {"by": "DEVICE", "maxAccounts": 2, "windowSeconds": 3600}})

    outcomes = [await attempt(email, "farm-1") for email in ("new1@example.cn", "new2@example.cn", "regular@example.cn", "new3@example.cn")]
    await shop.gql(ARCHIVE, {"id": rule["rule"]["id"]}, key=shop.keys.admin)

    assert regular == "PENDING_PAYMENT"
    assert outcomes == ["PENDING_PAYMENT", "PENDING_PAYMENT", "PENDING_PAYMENT", "RISK_REJECTED"]


PAGE = """
query Page($after: String) {
  riskVerdicts(first: 2, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } }
}
"""


async def test_verdicts_page_newest_first_without_gaps_or_repeats(shop: Shop, coins: StockedSku) -> None:
    for _ in range(3):
        await place(shop, coins, 1)
    everything = await shop.gql(PAGE.replace("first: 2", "first: 100"), {}, key=shop.keys.admin)
    every_id = [e["node"]["id"] for e in everything["data"]["riskVerdicts"]["edges"]]

    paged: list[str] = []
    after = None
    while True:
        page = (await shop.gql(PAGE, {"after": after}, key=shop.keys.admin))["data"]["riskVerdicts"]
        paged += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]

    assert len(every_id) >= 3 and paged == every_id
