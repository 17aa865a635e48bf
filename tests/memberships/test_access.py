"""Who may subscribe to what, and who may read and cancel a membership."""

from __future__ import annotations

from schema.relay import encode_id
from tests.memberships.conftest import Subscribing

LIST = """
query L($channel: String, $status: MembershipStatus) {
  subscriptions(channel: $channel, status: $status, first: 100) { edges { node { number channel status } } }
}
"""
SET_PLAN = """
mutation P($input: SetMembershipPlanInput!) {
  setMembershipPlan(input: $input) { plan { skuId period enabled maxCharge { amount } } userErrors { field code } }
}
"""
ORDER = "query O($id: ID!) { order(id: $id) { number status } }"


async def test_only_the_buyer_its_channel_and_operators_may_cancel_a_membership(subs: Subscribing) -> None:
    mine = await subs.subscribe()
    theirs = await subs.subscribe(phone="13900139000", account="13900139000")
    membership = mine["subscription"]
    not_found = {"subscription": None, "userErrors": [{"field": "id", "code": "NOT_FOUND"}]}

    for key in (theirs["accessToken"], mine["orderAccessToken"], subs.keys.taobao, subs.keys.web):
        assert await subs.cancel(membership, key) == not_found
        assert await subs.read(membership, key=key) is None
    seen = await subs.read(membership, key=mine["accessToken"])
    assert seen is not None and seen["status"] == "ACTIVE"
    # The membership's token opens the membership, not its orders; the order's token the order.
    first = mine["order"]
    assert (await subs.gql(ORDER, {"id": first["id"]}, key=mine["accessToken"]))["data"]["order"] is None
    assert (await subs.gql(ORDER, {"id": first["id"]}, key=mine["orderAccessToken"]))["data"]["order"] == {
        "number": first["number"], "status": "PAID"}

    cancelled = await subs.cancel(membership, mine["accessToken"])
    assert cancelled["subscription"]["status"] == "CANCELLED" and cancelled["userErrors"] == []
    again = await subs.cancel(membership, subs.keys.admin)
    assert again["userErrors"] == [{"field": "id", "code": "INVALID_STATE"}]


async def test_operators_list_every_membership_and_a_partner_only_its_channels(subs: Subscribing) -> None:
    web = (await subs.subscribe())["subscription"]
    taobao = (await subs.subscribe(channel="taobao", key=subs.keys.taobao))["subscription"]
    everyone = (await subs.gql(LIST, {}, key=subs.keys.admin))["data"]["subscriptions"]["edges"]
    assert {web["number"], taobao["number"]} <= {e["node"]["number"] for e in everyone}

    partner = (await subs.gql(LIST, {}, key=subs.keys.taobao))["data"]["subscriptions"]["edges"]
    assert taobao["number"] in {e["node"]["number"] for e in partner}
    assert {e["node"]["channel"] for e in partner} == {"taobao"}
    refused = await subs.gql(LIST, {"channel": "web"}, key=subs.keys.taobao)
    assert refused["data"] is None and refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await subs.gql(LIST, {})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_only_a_direct_top_up_with_a_plan_can_be_subscribed_to(subs: Subscribing) -> None:
    no_plan = await subs.subscribe("GS-60")
    card = await subs.subscribe("STEAM-100")
    assert no_plan["subscription"] is None and no_plan["userErrors"] == [
        {"field": "input.skuId", "code": "NOT_SUBSCRIBABLE", "message": "this SKU is not sold by subscription"}]
    assert card["userErrors"][0]["code"] == "NOT_SUBSCRIBABLE"
    wrong_period = await subs.subscribe(period="YEAR")
    assert wrong_period["userErrors"][0]["code"] == "INVALID_PERIOD"
    no_account = await subs.subscribe(account="")
    assert no_account["userErrors"][0]["code"] == "RECHARGE_ACCOUNT_REQUIRED"

    refused = await subs.gql(SET_PLAN, {"input": {"skuId": encode_id("Sku", subs.demo.skus["STEAM-100"]),
                                                  "period": "MONTH"}}, key=subs.keys.admin)
    assert refused["data"]["setMembershipPlan"] == {"plan": None, "userErrors": [
        {"field": "input.skuId", "code": "NOT_SUBSCRIBABLE"}]}
    not_operator = await subs.gql(SET_PLAN, {"input": {"skuId": encode_id("Sku", subs.demo.skus["GS-60"]),
                                                       "period": "MONTH"}}, key=subs.keys.taobao)
    assert not_operator["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_an_operator_sells_a_top_up_by_subscription_within_a_cap(subs: Subscribing) -> None:
    sku = encode_id("Sku", subs.demo.skus["IQY-MONTH"])
    capped = await subs.gql(SET_PLAN, {"input": {"skuId": sku, "period": "MONTH", "maxCharge": "0.01"}},
                            key=subs.keys.admin)
    assert capped["data"]["setMembershipPlan"] == {"plan": {
        "skuId": sku, "period": "MONTH", "enabled": True, "maxCharge": {"amount": "0.01"}}, "userErrors": []}
    # The buyer agreed to at most 0.01 a charge: the provider declines the first one, nothing stays.
    over = await subs.subscribe("IQY-MONTH")
    assert over["subscription"] is None
    assert over["userErrors"][0]["code"] == "PAYMENT_DECLINED"

    await subs.gql(SET_PLAN, {"input": {"skuId": sku, "period": "MONTH"}}, key=subs.keys.admin)
    fits = await subs.subscribe("IQY-MONTH")
    assert fits["userErrors"] == [] and fits["subscription"]["status"] == "ACTIVE"
    await subs.gql(SET_PLAN, {"input": {"skuId": sku, "period": "MONTH", "enabled": False}}, key=subs.keys.admin)
    assert (await subs.subscribe("IQY-MONTH"))["userErrors"][0]["code"] == "NOT_SUBSCRIBABLE"


async def test_a_subscribe_sent_again_with_its_key_answers_with_the_same_membership(subs: Subscribing) -> None:
    variables = {"channel": "web", "skuId": encode_id("Sku", subs.demo.skus["NCM-MONTH"]),
                 "idempotencyKey": f"membership-replay-{subs.clock().timestamp()}",
                 "buyer": {"phone": "138 0013 8000", "rechargeAccount": "13800138000"}}
    from tests.memberships.conftest import SUBSCRIBE

    first = (await subs.gql(SUBSCRIBE, {"input": variables}))["data"]["subscribe"]
    again = (await subs.gql(SUBSCRIBE, {"input": {**variables, "buyer": {
        "phone": "+86 13800138000", "rechargeAccount": "13800138000"}}}))["data"]["subscribe"]
    assert again == first
    other = (await subs.gql(SUBSCRIBE, {"input": {**variables, "buyer": {
        "phone": "13900139000", "rechargeAccount": "13900139000"}}}))["data"]["subscribe"]
    assert other["userErrors"] == [{"field": "input.idempotencyKey", "code": "IDEMPOTENCY_KEY_REUSED",
                                    "message": "this key was already used for a different subscription"}]
    assert len(subs.provider.charged(first["subscription"]["number"])) == 1
