"""A B2B channel's prepaid balance: operators top it up, its partner pays orders from it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from domain.access import Role
from models import BalanceMovement, Channel, ChannelKind, Listing
from schema.relay import encode_id
from services.access.keys import issue_key
from services.settlement import prepaid
from tests.e2e.shop import Shop, StockedSku, open_shop

TOP_UP = """
mutation TopUp($channel: String!, $amount: Decimal!, $reference: String!) {
  topUpPrepaidBalance(channel: $channel, amount: $amount, reference: $reference) {
    channel { code }
    balance { amount currency }
    userErrors { field message code }
  }
}
"""
PAY_FROM_BALANCE = """
mutation Pay($id: ID!) {
  payOrderFromBalance(orderId: $id) {
    order { status paymentReference }
    balance { amount currency }
    userErrors { field message code }
  }
}
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number total { amount } } accessToken userErrors { code } }
}
"""
ORDER = """
query Order($id: ID!) { order(id: $id) { status paymentReference events { actor toStatus reason } } }
"""
CHANNELS = """
{ channels { code prepaidBalance { amount currency } } }
"""
CHANNEL_NODE = """
query Node($id: ID!) { node(id: $id) { ... on Channel { code prepaidBalance { amount } } } }
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("prepaid-balance"), expiry_interval_seconds=3600) as opened:
        opened.extra["sku"] = await opened.shelf.counter(10_000, price_fen=2500)
        yield opened


@dataclass(frozen=True)
class Partner:
    """A B2B channel of its own, so each test knows its balance exactly."""

    channel: str
    key: str
    channel_id: int


@pytest.fixture
async def partner(shop: Shop) -> Partner:
    code = f"b2b-{uuid.uuid4().hex[:8]}"
    async with shop.db.sessions() as session, session.begin():
        row = Channel(code=code, name="B2B 预付测试", kind=ChannelKind.B2B, commission_bp=0, public=False)
        session.add(row)
        await session.flush()
        # A new channel sells what an operator lists on it.
        session.add(Listing(channel_id=row.id, product_id=shop.shelf.product_id, position=1))
        issued = await issue_key(session, role=Role.PARTNER, channel=code, name="prepaid test partner")
    return Partner(code, issued.plaintext, row.id)


async def top_up(shop: Shop, channel: str, amount: str, reference: str | None = None, *, key: str | None = None) -> dict[str, Any]:
    variables = {"channel": channel, "amount": amount, "reference": reference or f"bank-{uuid.uuid4().hex[:10]}"}
    return await shop.gql(TOP_UP, variables, key=key or shop.keys.admin)


async def place(shop: Shop, partner: Partner, quantity: int) -> dict[str, Any]:
    sku: StockedSku = shop.extra["sku"]
    order_input = {
        "channel": partner.channel,
        "idempotencyKey": f"PO-{uuid.uuid4().hex}",
        "lines": [{"skuId": sku.gid, "quantity": quantity}],
        "buyer": {"email": "buyer@example.com", "rechargeAccount": "player-2002"},
    }
    answer = await shop.gql(PLACE, {"input": order_input}, key=partner.key)
    assert answer["data"]["placeOrder"]["userErrors"] == []
    return answer["data"]["placeOrder"]


async def pay(shop: Shop, order: dict[str, Any], key: str) -> dict[str, Any]:
    return await shop.gql(PAY_FROM_BALANCE, {"id": order["order"]["id"]}, key=key)


async def ledger(shop: Shop, partner: Partner) -> tuple[int, int, list[int]]:
    """(balance, sum of movements, movements) in fen, straight from the database."""
    async with shop.db.sessions() as session:
        balance = await prepaid.balance_of(session, partner.channel_id)
        total = await prepaid.movements_total(session, partner.channel_id)
        movements = list(await session.scalars(
            select(BalanceMovement.amount_fen).where(BalanceMovement.channel_id == partner.channel_id).order_by(BalanceMovement.id)
        ))
    return balance, total, movements


def cny(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "CNY"}


# --- topping up ---------------------------------------------------------------------------


async def test_an_operator_tops_up_a_b2b_balance(shop: Shop, partner: Partner) -> None:
    answer = await top_up(shop, partner.channel, "100.00")

    assert answer == {"data": {"topUpPrepaidBalance": {
        "channel": {"code": partner.channel}, "balance": cny("100.00"), "userErrors": [],
    }}}
    assert await ledger(shop, partner) == (10000, 10000, [10000])


async def test_the_same_top_up_reference_credits_once(shop: Shop, partner: Partner) -> None:
    await top_up(shop, partner.channel, "100.00", "bank-20261111-001")

    again = await top_up(shop, partner.channel, "100.00", "bank-20261111-001")

    assert again["data"]["topUpPrepaidBalance"]["balance"] == cny("100.00")
    assert await ledger(shop, partner) == (10000, 10000, [10000])


async def test_concurrent_first_top_ups_open_one_account(shop: Shop, partner: Partner) -> None:
    answers = await asyncio.gather(*(top_up(shop, partner.channel, "10.00") for _ in range(5)))

    assert [a["data"]["topUpPrepaidBalance"]["userErrors"] for a in answers] == [[]] * 5
    assert await ledger(shop, partner) == (5000, 5000, [1000] * 5)


@pytest.mark.parametrize(
    ("channel", "amount", "error"),
    [
        pytest.param("taobao", "10.00", {"field": "channel", "message": "only B2B channels keep a prepaid balance", "code": "NOT_PREPAID"}, id="not B2B"),
        pytest.param("{b2b}", "0", {"field": "amount", "message": "a top-up is more than zero and at most 10,000,000,000.00", "code": "INVALID_AMOUNT"}, id="zero"),
        pytest.param("{b2b}", "-5.00", {"field": "amount", "message": "a top-up is more than zero and at most 10,000,000,000.00", "code": "INVALID_AMOUNT"}, id="negative"),
    ],
)
async def test_a_top_up_that_cannot_be_credited_is_a_user_error(
    shop: Shop, partner: Partner, channel: str, amount: str, error: dict[str, str]
) -> None:
    answer = await top_up(shop, channel.format(b2b=partner.channel), amount)

    assert answer == {"data": {"topUpPrepaidBalance": {"channel": None, "balance": None, "userErrors": [error]}}}
    assert await ledger(shop, partner) == (0, 0, [])


async def test_an_unknown_channel_is_bad_input(shop: Shop) -> None:
    answer = await top_up(shop, "no-such-channel", "10.00")

    assert [e["extensions"]["code"] for e in answer["errors"]] == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(("caller", "code"), [("b2b", "FORBIDDEN"), ("web", "FORBIDDEN"), (None, "UNAUTHENTICATED")])
async def test_only_operators_top_up(shop: Shop, partner: Partner, caller: str | None, code: str) -> None:
    key = {"b2b": partner.key, "web": shop.keys.web, None: None}[caller]

    answer = await shop.gql(TOP_UP, {"channel": partner.channel, "amount": "1000.00", "reference": "self-service"}, key=key)

    assert (answer["data"], [e["extensions"]["code"] for e in answer["errors"]]) == (None, [code])
    assert await ledger(shop, partner) == (0, 0, [])


# --- paying from the balance --------------------------------------------------------------


async def test_a_partner_pays_its_order_from_the_balance(shop: Shop, partner: Partner) -> None:
    await top_up(shop, partner.channel, "100.00")
    placed = await place(shop, partner, 2)
    number = placed["order"]["number"]

    answer = await pay(shop, placed, partner.key)

    assert answer == {"data": {"payOrderFromBalance": {
        "order": {"status": "PAID", "paymentReference": f"prepaid:{number}"},
        "balance": cny("50.00"),
        "userErrors": [],
    }}}
    events = (await shop.gql(ORDER, {"id": placed["order"]["id"]}, key=partner.key))["data"]["order"]["events"]
    assert events[-1] == {"actor": f"partner:{partner.key.split('_')[1]}", "toStatus": "PAID", "reason": f"payment prepaid:{number}"}
    assert await ledger(shop, partner) == (5000, 5000, [10000, -5000])


async def test_paying_twice_deducts_once(shop: Shop, partner: Partner) -> None:
    await top_up(shop, partner.channel, "100.00")
    placed = await place(shop, partner, 1)
    first = await pay(shop, placed, partner.key)

    again = await pay(shop, placed, partner.key)

    assert again == first
    assert await ledger(shop, partner) == (7500, 7500, [10000, -2500])


async def test_an_operator_may_pay_from_the_balance(shop: Shop, partner: Partner) -> None:
    await top_up(shop, partner.channel, "30.00")
    placed = await place(shop, partner, 1)

    answer = await pay(shop, placed, shop.keys.admin)

    assert answer["data"]["payOrderFromBalance"]["balance"] == cny("5.00")


async def test_too_little_balance_changes_nothing(shop: Shop, partner: Partner) -> None:
    await top_up(shop, partner.channel, "40.00")
    placed = await place(shop, partner, 2)

    answer = await pay(shop, placed, partner.key)

    assert answer == {"data": {"payOrderFromBalance": {
        "order": {"status": "PENDING_PAYMENT", "paymentReference": None},
        "balance": cny("40.00"),
        "userErrors": [{"field": "orderId", "message": "the channel's prepaid balance is too low for this order", "code": "INSUFFICIENT_BALANCE"}],
    }}}
    order = (await shop.gql(ORDER, {"id": placed["order"]["id"]}, key=partner.key))["data"]["order"]
    assert [e["toStatus"] for e in order["events"]] == ["PENDING_RISK", "PENDING_PAYMENT"]
    assert await ledger(shop, partner) == (4000, 4000, [4000])


async def test_a_channel_without_an_account_has_no_balance_to_pay_from(shop: Shop, partner: Partner) -> None:
    placed = await place(shop, partner, 1)

    answer = await pay(shop, placed, partner.key)

    assert answer["data"]["payOrderFromBalance"]["userErrors"][0]["code"] == "INSUFFICIENT_BALANCE"
    assert answer["data"]["payOrderFromBalance"]["balance"] == cny("0.00")


async def test_of_two_orders_the_balance_covers_one_exactly_one_is_paid(shop: Shop, partner: Partner) -> None:
    await top_up(shop, partner.channel, "60.00")
    first, second = [await place(shop, partner, 2) for _ in range(2)]

    answers = await asyncio.gather(pay(shop, first, partner.key), pay(shop, second, partner.key))

    codes = sorted([e["code"] for e in a["data"]["payOrderFromBalance"]["userErrors"]] for a in answers)
    statuses = sorted(a["data"]["payOrderFromBalance"]["order"]["status"] for a in answers)
    assert (codes, statuses) == ([[], ["INSUFFICIENT_BALANCE"]], ["PAID", "PENDING_PAYMENT"])
    assert await ledger(shop, partner) == (1000, 1000, [6000, -5000])


async def test_many_concurrent_payments_never_overdraw(shop: Shop, partner: Partner) -> None:
    await top_up(shop, partner.channel, "100.00")
    orders = [await place(shop, partner, 1) for _ in range(6)]

    answers = await asyncio.gather(*(pay(shop, order, partner.key) for order in orders))

    paid = [a for a in answers if not a["data"]["payOrderFromBalance"]["userErrors"]]
    assert len(paid) == 4
    assert await ledger(shop, partner) == (0, 0, [10000, -2500, -2500, -2500, -2500])


async def test_the_balance_is_always_the_sum_of_its_movements(shop: Shop, partner: Partner) -> None:
    await top_up(shop, partner.channel, "55.50")
    await top_up(shop, partner.channel, "55.50", "repeat-me")
    await top_up(shop, partner.channel, "55.50", "repeat-me")
    orders = [await place(shop, partner, quantity) for quantity in (1, 1, 3, 1)]
    for order in orders:
        await pay(shop, order, partner.key)
    await pay(shop, orders[0], partner.key)

    balance, total, movements = await ledger(shop, partner)

    assert balance == total == sum(movements) == 11100 - 2500 - 2500 - 2500  # the 75.00 order no longer fitted
    assert movements == [5550, 5550, -2500, -2500, -2500]


async def test_an_order_of_a_channel_without_a_balance_cannot_be_paid_from_one(shop: Shop) -> None:
    sku: StockedSku = shop.extra["sku"]
    order_input = {
        "channel": "taobao", "idempotencyKey": f"TB-{uuid.uuid4().hex}",
        "lines": [{"skuId": sku.gid, "quantity": 1}], "buyer": {"email": "buyer@example.com", "rechargeAccount": "player-3003"},
    }
    placed = (await shop.gql(PLACE, {"input": order_input}, key=shop.keys.taobao))["data"]["placeOrder"]

    answer = await pay(shop, placed, shop.keys.taobao)

    assert answer["data"]["payOrderFromBalance"] == {
        "order": {"status": "PENDING_PAYMENT", "paymentReference": None},
        "balance": None,
        "userErrors": [{"field": "orderId", "message": "only B2B channels keep a prepaid balance", "code": "NOT_PREPAID"}],
    }


# --- who may pay, and who may read the balance --------------------------------------------


async def test_a_partner_of_another_channel_cannot_pay_from_the_balance(shop: Shop) -> None:
    await top_up(shop, "b2b-demo", "100.00")
    placed = await place(shop, Partner("b2b-demo", shop.keys.b2b, 0), 1)

    answer = await pay(shop, placed, shop.keys.taobao)

    assert answer == {"data": {"payOrderFromBalance": {
        "order": None, "balance": None,
        "userErrors": [{"field": "orderId", "message": "no such order", "code": "NOT_FOUND"}],
    }}}
    order = (await shop.gql(ORDER, {"id": placed["order"]["id"]}, key=shop.keys.b2b))["data"]["order"]
    assert order["status"] == "PENDING_PAYMENT"


async def test_the_buyer_and_storefront_keys_cannot_pay_from_the_balance(shop: Shop, partner: Partner) -> None:
    await top_up(shop, partner.channel, "100.00")
    placed = await place(shop, partner, 1)

    as_buyer = await pay(shop, placed, placed["accessToken"])
    as_storefront = await pay(shop, placed, shop.keys.web)

    assert [e["extensions"]["code"] for e in as_buyer["errors"]] == ["UNAUTHENTICATED"]
    assert as_storefront["data"]["payOrderFromBalance"]["userErrors"][0]["code"] == "NOT_FOUND"
    assert await ledger(shop, partner) == (10000, 10000, [10000])


async def test_the_balance_is_read_by_operators_and_the_channel_itself(shop: Shop, partner: Partner) -> None:
    await top_up(shop, partner.channel, "12.34")
    channel_id = encode_id("Channel", partner.channel_id)

    own = await shop.gql(CHANNELS, key=partner.key)
    operator = await shop.gql(CHANNEL_NODE, {"id": channel_id}, key=shop.keys.admin)
    other_partner = await shop.gql(CHANNEL_NODE, {"id": channel_id}, key=shop.keys.taobao)
    others_list = await shop.gql(CHANNELS, key=shop.keys.taobao)
    anonymous = await shop.gql(CHANNEL_NODE, {"id": channel_id})

    assert own == {"data": {"channels": [{"code": partner.channel, "prepaidBalance": cny("12.34")}]}}
    assert operator == {"data": {"node": {"code": partner.channel, "prepaidBalance": {"amount": "12.34"}}}}
    assert other_partner == {"data": {"node": None}}
    assert others_list == {"data": {"channels": [{"code": "taobao", "prepaidBalance": None}]}}
    assert anonymous == {"data": {"node": None}}


async def test_channels_that_keep_no_balance_show_none(shop: Shop) -> None:
    answer = await shop.gql(CHANNELS, key=shop.keys.admin)

    balances = {c["code"]: c["prepaidBalance"] for c in answer["data"]["channels"] if not c["code"].startswith("b2b-")}
    assert balances == {"web": None, "mini": None, "h5": None, "taobao": None}
