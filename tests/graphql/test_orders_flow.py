"""A buyer places an order priced by the server, and only those entitled read it back."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from models import Channel
from services.pricing.prices import PriceChangeRequest, set_channel_price
from tests.e2e.shop import Shop, StockedSku, open_shop

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    order {
      id number status channel total { amount currency }
      buyer { phone email rechargeAccount }
      lines { quantity presaleQuantity unitPrice { amount currency } total { amount } sku { code } }
      events { actor fromStatus toStatus reason }
    }
    accessToken
    userErrors { field message code }
  }
}
"""
ORDER = """
query Order($id: ID!) { order(id: $id) { number status channel total { amount } } }
"""
NODE = """
query Node($id: ID!) { node(id: $id) { __typename ... on Order { number status } } }
"""
INPUT_FIELDS = """
query Fields($name: String!) { __type(name: $name) { inputFields { name } } }
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("orders-flow")) as opened:
        yield opened


def order_input(sku: StockedSku, quantity: int = 1, *, channel: str = "web", key: str | None = None,
                buyer: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "channel": channel,
        "idempotencyKey": key or uuid.uuid4().hex,
        "lines": [{"skuId": sku.gid, "quantity": quantity}],
        "buyer": buyer if buyer is not None else {"phone": "13800138000"},
    }


async def place(shop: Shop, sku: StockedSku, quantity: int = 1, *, channel: str = "web", as_key: str | None = None,
                buyer: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = await shop.gql(PLACE, {"input": order_input(sku, quantity, channel=channel, buyer=buyer)}, key=as_key)
    payload = answer["data"]["placeOrder"]
    assert payload["userErrors"] == [], payload
    return payload


async def price_on(shop: Shop, channel: str, sku: StockedSku, amount: str) -> None:
    async with shop.db.sessions() as session, session.begin():
        channel_id = await session.scalar(select(Channel.id).where(Channel.code == channel))
        assert channel_id is not None
        await set_channel_price(session, PriceChangeRequest(channel_id, sku.pk, Decimal(amount)), actor="test")


async def test_a_guest_order_is_priced_by_the_channel_and_waits_for_payment(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(5, price_fen=1000)
    await price_on(shop, "web", sku, "9.50")

    answer = await shop.gql(PLACE, {"input": order_input(sku, 2, buyer={"phone": "13800138000", "email": "a@example.com"})})

    payload = answer["data"]["placeOrder"]
    order = payload["order"]
    assert re.fullmatch(r"QY\d{16}", order["number"])
    assert payload == {
        "order": {
            "id": order["id"],
            "number": order["number"],
            "status": "PENDING_PAYMENT",
            "channel": "web",
            "total": {"amount": "19.00", "currency": "CNY"},
            "buyer": {"phone": "13800138000", "email": "a@example.com", "rechargeAccount": None},
            "lines": [{
                "quantity": 2, "presaleQuantity": 0, "unitPrice": {"amount": "9.50", "currency": "CNY"},
                "total": {"amount": "19.00"}, "sku": {"code": sku.code},
            }],
            "events": [
                {"actor": "anonymous", "fromStatus": None, "toStatus": "PENDING_RISK", "reason": "placed"},
                {"actor": "system", "fromStatus": "PENDING_RISK", "toStatus": "PENDING_PAYMENT", "reason": "no risk rules matched"},
            ],
        },
        "accessToken": f"qo_{order['number']}_{payload['accessToken'].rsplit('_', 1)[1]}",
        "userErrors": [],
    }
    assert await shop.ledger.codes(sku) == {"AVAILABLE": 3, "RESERVED": 2}


async def test_a_buyer_cannot_send_a_price(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1, price_fen=1000)
    orders_before = await shop.ledger.order_count()
    cheap = order_input(sku)
    cheap["lines"][0]["unitPrice"] = "0.01"

    response = await shop.client.post(PLACE, {"input": cheap})

    answer = response.json()
    assert (response.status_code, list(answer), [e["extensions"]["code"] for e in answer["errors"]]) == (
        400, ["errors"], ["BAD_USER_INPUT"],
    )
    assert "unitPrice" in answer["errors"][0]["message"]
    fields = {
        # Read by a partner: the public sees no introspection in production.
        name: [f["name"] for f in (await shop.gql(INPUT_FIELDS, {"name": name}, key=shop.keys.taobao))["data"]["__type"]["inputFields"]]
        for name in ("PlaceOrderInput", "OrderLineInput")
    }
    assert fields == {
        "PlaceOrderInput": ["channel", "idempotencyKey", "lines", "buyer", "couponCode"],
        "OrderLineInput": ["skuId", "quantity"],
    }
    assert await shop.ledger.order_count() == orders_before
    assert await shop.ledger.codes(sku) == {"AVAILABLE": 1}


async def test_the_buyer_reads_the_order_with_its_access_token(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1, price_fen=2500)
    placed = await place(shop, sku)

    answer = await shop.gql(ORDER, {"id": placed["order"]["id"]}, key=placed["accessToken"])

    assert answer == {"data": {"order": {
        "number": placed["order"]["number"], "status": "PENDING_PAYMENT", "channel": "web", "total": {"amount": "25.00"},
    }}}


@pytest.mark.parametrize("reader", ["anonymous", "other buyer", "web storefront key", "taobao partner", "b2b partner"])
async def test_a_web_order_is_invisible_to_anyone_but_its_buyer_and_operators(shop: Shop, reader: str) -> None:
    sku = await shop.shelf.card_codes(2)
    mine = await place(shop, sku)
    theirs = await place(shop, sku, buyer={"email": "b@example.com"})
    key = {
        "anonymous": None, "other buyer": theirs["accessToken"], "web storefront key": shop.keys.web,
        "taobao partner": shop.keys.taobao, "b2b partner": shop.keys.b2b,
    }[reader]

    by_id = await shop.gql(ORDER, {"id": mine["order"]["id"]}, key=key)
    as_node = await shop.gql(NODE, {"id": mine["order"]["id"]}, key=key)

    assert (by_id, as_node) == ({"data": {"order": None}}, {"data": {"node": None}})


async def test_an_operator_reads_any_order_and_the_channel_partner_its_own(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(2)
    on_web = await place(shop, sku)
    on_taobao = await place(shop, sku, channel="taobao", as_key=shop.keys.taobao)

    seen = {
        (order, reader): (await shop.gql(NODE, {"id": placed["order"]["id"]}, key=key))["data"]["node"]
        for order, placed in (("web", on_web), ("taobao", on_taobao))
        for reader, key in (("admin", shop.keys.admin), ("taobao", shop.keys.taobao), ("b2b", shop.keys.b2b))
    }

    web = {"__typename": "Order", "number": on_web["order"]["number"], "status": "PENDING_PAYMENT"}
    taobao = {"__typename": "Order", "number": on_taobao["order"]["number"], "status": "PENDING_PAYMENT"}
    assert seen == {
        ("web", "admin"): web, ("web", "taobao"): None, ("web", "b2b"): None,
        ("taobao", "admin"): taobao, ("taobao", "taobao"): taobao, ("taobao", "b2b"): None,
    }
    assert on_taobao["order"]["events"][0]["actor"] == f"partner:{shop.keys.prefix(shop.keys.taobao)}"


async def test_a_token_opens_only_its_own_order(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(2)
    first = await place(shop, sku)
    second = await place(shop, sku)

    answers = [(await shop.gql(ORDER, {"id": placed["order"]["id"]}, key=first["accessToken"]))["data"]["order"]
               for placed in (first, second)]

    assert [a and a["number"] for a in answers] == [first["order"]["number"], None]


async def test_a_forged_access_token_is_refused(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    placed = await place(shop, sku)
    forged = f"qo_{placed['order']['number']}_{'0' * 40}"

    response = await shop.client.post(ORDER, {"id": placed["order"]["id"]}, key=forged)

    answer = response.json()
    assert (response.status_code, list(answer), [e["extensions"]["code"] for e in answer["errors"]]) == (
        401, ["errors"], ["UNAUTHENTICATED"],
    )


async def test_a_partner_places_orders_on_its_own_channel_only(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)

    elsewhere = await shop.gql(PLACE, {"input": order_input(sku, channel="b2b-demo")}, key=shop.keys.taobao)
    on_web = await shop.gql(PLACE, {"input": order_input(sku, channel="web")}, key=shop.keys.taobao)
    anonymous_on_partner_channel = await shop.gql(PLACE, {"input": order_input(sku, channel="taobao")})

    assert [[e["extensions"]["code"] for e in a["errors"]] for a in (elsewhere, on_web, anonymous_on_partner_channel)] == [
        ["FORBIDDEN"], ["FORBIDDEN"], ["FORBIDDEN"],
    ]
    assert await shop.ledger.codes(sku) == {"AVAILABLE": 1}


async def test_an_unknown_order_id_is_null_and_a_malformed_one_bad_input(shop: Shop) -> None:
    from schema.relay import encode_id

    unknown = await shop.gql(ORDER, {"id": encode_id("Order", 999_999)}, key=shop.keys.admin)
    malformed = await shop.gql(ORDER, {"id": "not-an-id"}, key=shop.keys.admin)
    not_an_order = await shop.gql(ORDER, {"id": encode_id("Sku", 1)}, key=shop.keys.admin)

    assert unknown == {"data": {"order": None}}
    assert [e["extensions"]["code"] for e in malformed["errors"]] == ["BAD_USER_INPUT"]
    assert [e["extensions"]["code"] for e in not_an_order["errors"]] == ["BAD_USER_INPUT"]
