"""A coupon used on an order that is refunded whole before anything was delivered comes back, once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from suppliers.base import Outcome
from tests.fulfilment.conftest import Fulfilling, _sku_id
from tests.fulfilment.fakes import FakeSupplier

CREATE = """
mutation C($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } userErrors { field code } } }
"""
CAMPAIGN = "query Q($id: ID!) { campaign(id: $id) { redemptions spent { amount } } }"
PLACE = """
mutation P($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number discount { amount } } userErrors { field code } }
}
"""


async def _place(f: Fulfilling, code: str, key: str) -> dict[str, Any]:
    answer = await f.gql(PLACE, {"input": {
        "channel": "web", "idempotencyKey": key, "couponCode": code,
        "lines": [{"skuId": _sku_id(f.demo, "GS-60"), "quantity": 1}],
        "buyer": {"phone": "13800138000", "rechargeAccount": "13800138000"},
    }})
    return answer["data"]["placeOrder"]


async def test_a_paid_order_refunded_whole_gives_its_coupon_back_once(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    stamp = int(datetime.now(UTC).timestamp() * 1000)
    code = f"BACK{stamp % 10**8}"
    created = await fulfilling.gql(CREATE, {"input": {
        "name": "one use, given back", "channel": "web", "code": code,
        "skuIds": [_sku_id(fulfilling.demo, "GS-60")], "amountOff": "1.00", "maxRedemptions": 1, "perBuyerLimit": 1,
    }}, key=fulfilling.keys.admin)
    assert created["data"]["createCampaign"]["userErrors"] == []
    campaign = created["data"]["createCampaign"]["campaign"]["id"]
    fakes["sim-fast"].reset(default=Outcome.FAILED)
    fakes["sim-backup"].reset(default=Outcome.FAILED)

    first = await _place(fulfilling, code, f"coupon-back-{stamp}-1")
    assert first["userErrors"] == [] and first["order"]["discount"] == {"amount": "1.00"}
    assert await fulfilling.pay(first["order"]) == "PAID"
    await fulfilling.settle()
    assert (await fulfilling.status(first["order"]))["status"] == "REFUNDED"
    figures = (await fulfilling.gql(CAMPAIGN, {"id": campaign}, key=fulfilling.keys.admin))["data"]["campaign"]
    assert figures == {"redemptions": 0, "spent": {"amount": "0.00"}}

    # The one use is the buyer's again; settling once more gives nothing back a second time.
    fakes["sim-fast"].reset(default=Outcome.SUCCEEDED)
    again = await _place(fulfilling, code, f"coupon-back-{stamp}-2")
    assert again["userErrors"] == [] and again["order"]["discount"] == {"amount": "1.00"}
    assert await fulfilling.pay(again["order"]) == "PAID"
    await fulfilling.settle()
    assert (await fulfilling.status(again["order"]))["status"] == "DELIVERED"
    figures = (await fulfilling.gql(CAMPAIGN, {"id": campaign}, key=fulfilling.keys.admin))["data"]["campaign"]
    assert figures == {"redemptions": 1, "spent": {"amount": "1.00"}}
    third = await _place(fulfilling, code, f"coupon-back-{stamp}-3")
    assert third["order"] is None and third["userErrors"][0]["field"] == "couponCode"
