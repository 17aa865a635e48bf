"""Every money input takes an amount exactly as the contract writes it: "9.90", "10", "0.5".

Anything else (an exponent, spaces, other digits, a JSON number, a number literal, more than
two places, more than 10,000,000,000.00) is refused as BAD_USER_INPUT before anything is
written, on every mutation that takes money; the message names where the amount stood and
the rule it broke.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models import BalanceMovement, Base, Channel, ChannelKind, LedgerEntry, PriceChange, PriceTier, Sku
from schema.relay import encode_id
from services.core.database import Database
from tests.e2e.shop import Shop, open_shop
from tests.services import catalog_rows as rows

SET_PRICE = """
mutation Set($input: SetChannelPriceInput!) {
  setChannelPrice(input: $input) { channelPrice { price { amount } } userErrors { field code } }
}
"""
SET_CONTROL = """
mutation Control($input: SetPriceControlInput!) {
  setPriceControl(input: $input) { priceControl { floor { amount } ceiling { amount } } userErrors { field code } }
}
"""
SET_TIERS = """
mutation Tiers($input: SetPriceTiersInput!) { setPriceTiers(input: $input) { userErrors { field code } } }
"""
TOP_UP = """
mutation TopUp($channel: String!, $amount: Decimal!, $reference: String!) {
  topUpPrepaidBalance(channel: $channel, amount: $amount, reference: $reference) { balance { amount } userErrors { field code } }
}
"""
DEPOSIT = """
mutation Deposit($supplier: String!, $amount: Decimal!, $reference: String!) {
  recordSupplierDeposit(supplier: $supplier, amount: $amount, reference: $reference) { balance { amount } userErrors { field code } }
}
"""

AMOUNT_RULE = 'an amount is a decimal string of ASCII digits with at most two decimal places, such as "9.90"'
AT_MOST = "an amount is at most 10,000,000,000.00"
NOT_A_NUMBER = 'an amount is sent as a string such as "9.90", not as a JSON number'

# What a client sends as the amount, and the rule the answer names.
REFUSED = [
    pytest.param("1e3", AMOUNT_RULE, id="exponent"),
    pytest.param("1E-2", AMOUNT_RULE, id="negative exponent"),
    pytest.param("1_000", AMOUNT_RULE, id="underscore"),
    pytest.param("1,000.00", AMOUNT_RULE, id="thousands separator"),
    pytest.param(" 9.90 ", AMOUNT_RULE, id="spaces around"),
    pytest.param("9.90\n", AMOUNT_RULE, id="trailing newline"),
    pytest.param("٩.٩٠", AMOUNT_RULE, id="Arabic-Indic digits"),
    pytest.param("９.９０", AMOUNT_RULE, id="full-width digits"),
    pytest.param("NaN", AMOUNT_RULE, id="NaN"),
    pytest.param("Infinity", AMOUNT_RULE, id="Infinity"),
    pytest.param("-Infinity", AMOUNT_RULE, id="minus Infinity"),
    pytest.param("+9.90", AMOUNT_RULE, id="plus sign"),
    pytest.param("9.999", AMOUNT_RULE, id="three places"),
    pytest.param("9.900", AMOUNT_RULE, id="three places ending in zero"),
    pytest.param(".5", AMOUNT_RULE, id="no integer part"),
    pytest.param("5.", AMOUNT_RULE, id="no decimals after the point"),
    pytest.param("", AMOUNT_RULE, id="empty"),
    pytest.param("¥9.90", AMOUNT_RULE, id="currency sign"),
    pytest.param("-0", "an amount of zero has no sign: write 0", id="negative zero"),
    pytest.param("-0.00", "an amount of zero has no sign: write 0", id="negative zero with places"),
    pytest.param("10000000000.01", AT_MOST, id="one fen above the largest amount"),
    pytest.param("92233720368547758.07", AT_MOST, id="the largest fen a BIGINT holds"),
    pytest.param("92233720368547758.08", AT_MOST, id="one fen above a BIGINT"),
    pytest.param("9" * 400, AT_MOST, id="four hundred digits"),
    pytest.param(9.9, NOT_A_NUMBER, id="JSON float"),
    pytest.param(10, NOT_A_NUMBER, id="JSON integer"),
    pytest.param(1e3, NOT_A_NUMBER, id="JSON float with an exponent"),
    pytest.param(True, 'an amount is sent as a string such as "9.90", not as that', id="JSON boolean"),
    pytest.param({"amount": "9.90"}, 'an amount is sent as a string such as "9.90", not as that', id="JSON object"),
]


@dataclass(frozen=True)
class Ground:
    """A SKU, a B2B channel and a supplier of this module's own, so nothing else sees its writes."""

    sku_pk: int
    channel: str
    channel_pk: int
    supplier: str
    supplier_pk: int

    @property
    def sku(self) -> str:
        return encode_id("Sku", self.sku_pk)


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("money-input")) as opened:
        yield opened


@pytest.fixture(scope="module")
async def ground(shop: Shop) -> Ground:
    sku = await shop.shelf.counter(0, price_fen=5000)
    async with shop.db.sessions() as session, session.begin():
        channel = Channel(
            code=_reference("b2b"), name="金额输入测试", kind=ChannelKind.B2B, commission_bp=0, public=False
        )
        session.add(channel)
        supplier = await rows.supplier(session, "金额输入测试供应商")
        await session.flush()
        return Ground(sku.pk, channel.code, channel.id, supplier.code, supplier.id)


def _reference(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# Each money input: the document, and its variables with the amount in place.
MONEY_INPUTS: dict[str, tuple[str, Callable[[Ground, object], dict[str, Any]]]] = {
    "setChannelPrice.amount": (SET_PRICE, lambda g, a: {"input": {"channel": g.channel, "skuId": g.sku, "amount": a}}),
    "setPriceControl.floor": (SET_CONTROL, lambda g, a: {"input": {"skuId": g.sku, "floor": a}}),
    "setPriceControl.ceiling": (SET_CONTROL, lambda g, a: {"input": {"skuId": g.sku, "ceiling": a}}),
    "setPriceTiers.tiers.amount": (SET_TIERS, lambda g, a: {"input": {
        "channel": g.channel, "skuId": g.sku,
        "tiers": [{"minQuantity": 10, "amount": "40.00"}, {"minQuantity": 100, "amount": a}],
    }}),
    "topUpPrepaidBalance.amount": (TOP_UP, lambda g, a: {
        "channel": g.channel, "amount": a, "reference": _reference("bank"),
    }),
    "recordSupplierDeposit.amount": (DEPOSIT, lambda g, a: {
        "supplier": g.supplier, "amount": a, "reference": _reference("wire"),
    }),
}


def money_input(field: str, ground: Ground, amount: object) -> tuple[str, dict[str, Any]]:
    document, variables = MONEY_INPUTS[field]
    return document, variables(ground, amount)


# Where graphql-core says the refused variable stood.
VARIABLE_PATHS = {
    "setChannelPrice.amount": "Variable '$input' has invalid value at .amount",
    "setPriceControl.floor": "Variable '$input' has invalid value at .floor",
    "setPriceControl.ceiling": "Variable '$input' has invalid value at .ceiling",
    "setPriceTiers.tiers.amount": "Variable '$input' has invalid value at .tiers[1].amount",
    "topUpPrepaidBalance.amount": "Variable '$amount' has invalid value",
    "recordSupplierDeposit.amount": "Variable '$amount' has invalid value",
}


async def written(db: Database, ground: Ground) -> dict[str, Any]:
    """Everything the money mutations could have written for this module's rows."""
    async with db.sessions() as session:
        sku = await session.get(Sku, ground.sku_pk)
        assert sku is not None
        return {
            "price changes": await _count(session, PriceChange, PriceChange.sku_id == ground.sku_pk),
            "tiers": await _count(session, PriceTier, PriceTier.sku_id == ground.sku_pk),
            "control": (sku.price_floor_fen, sku.price_ceiling_fen),
            "balance movements": await _count(session, BalanceMovement, BalanceMovement.channel_id == ground.channel_pk),
            "ledger entries": await _count(session, LedgerEntry, or_(
                LedgerEntry.channel_id == ground.channel_pk, LedgerEntry.supplier_id == ground.supplier_pk
            )),
        }


async def _count(session: AsyncSession, model: type[Base], where: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(where)) or 0)


@pytest.mark.parametrize("field", list(MONEY_INPUTS))
@pytest.mark.parametrize(("amount", "rule"), REFUSED)
async def test_a_money_variable_not_in_the_contracts_form_is_bad_input_and_writes_nothing(
    shop: Shop, ground: Ground, field: str, amount: object, rule: str
) -> None:
    before = await written(shop.db, ground)

    answer = await shop.gql(*money_input(field, ground, amount), key=shop.keys.admin)

    assert answer == {"errors": [{
        "message": f"{VARIABLE_PATHS[field]}: {rule}",
        "locations": answer["errors"][0]["locations"],
        "extensions": {"code": "BAD_USER_INPUT"},
    }]}
    assert await written(shop.db, ground) == before


LITERAL_REFUSALS = [
    pytest.param("1e3", "a number", id="float literal with an exponent"),
    pytest.param("9.9", "a number", id="float literal"),
    pytest.param("10", "a number", id="int literal"),
    pytest.param("NINE", "that", id="enum literal"),
    pytest.param('"1e3"', None, id="string literal with an exponent"),
    pytest.param('" 9.90 "', None, id="string literal with spaces"),
]


@pytest.mark.parametrize(("literal", "kind"), LITERAL_REFUSALS)
async def test_a_money_literal_not_in_the_contracts_form_is_bad_input_named_by_its_field(
    shop: Shop, ground: Ground, literal: str, kind: str | None
) -> None:
    rule = AMOUNT_RULE if kind is None else f'an amount is written as a string such as "9.90", not as {kind}'
    before = await written(shop.db, ground)
    top_up = (
        f'mutation {{ topUpPrepaidBalance(channel: "{ground.channel}", amount: {literal}, reference: "lit") '
        "{ userErrors { code } } }"
    )
    tiers = (
        f'mutation {{ setPriceTiers(input: {{channel: "{ground.channel}", skuId: "{ground.sku}", tiers: ['
        f'{{minQuantity: 10, amount: "40.00"}}, {{minQuantity: 100, amount: {literal}}}]}}) {{ userErrors {{ code }} }} }}'
    )

    answers = [await shop.gql(top_up, key=shop.keys.admin), await shop.gql(tiers, key=shop.keys.admin)]

    assert [[(e["message"], e["extensions"]) for e in a["errors"]] for a in answers] == [
        [(f"amount: {rule}", {"code": "BAD_USER_INPUT"})],
        [(f"input.tiers[1].amount: {rule}", {"code": "BAD_USER_INPUT"})],
    ]
    assert all("data" not in a for a in answers)
    assert await written(shop.db, ground) == before


async def test_the_contracts_forms_are_taken_up_to_the_largest_amount(shop: Shop, ground: Ground) -> None:
    top_ups = [
        await shop.gql(*money_input("topUpPrepaidBalance.amount", ground, amount), key=shop.keys.admin)
        for amount in ("0.5", "10", "9.90", "0009.90", "10000000000.00")
    ]
    deposit = await shop.gql(*money_input("recordSupplierDeposit.amount", ground, "10000000000.00"), key=shop.keys.admin)
    price = await shop.gql(*money_input("setChannelPrice.amount", ground, "10000000000.00"), key=shop.keys.admin)
    literal = await shop.gql(
        f'mutation {{ setChannelPrice(input: {{channel: "{ground.channel}", skuId: "{ground.sku}", amount: "49.90"}}) '
        "{ channelPrice { price { amount } } userErrors { code } } }",
        key=shop.keys.admin,
    )

    assert [a["data"]["topUpPrepaidBalance"]["balance"] for a in top_ups] == [
        {"amount": "0.50"}, {"amount": "10.50"}, {"amount": "20.40"}, {"amount": "30.30"}, {"amount": "10000000030.30"},
    ]
    assert deposit == {"data": {"recordSupplierDeposit": {"balance": {"amount": "10000000000.00"}, "userErrors": []}}}
    assert price == {"data": {"setChannelPrice": {"channelPrice": {"price": {"amount": "10000000000.00"}}, "userErrors": []}}}
    assert literal == {"data": {"setChannelPrice": {"channelPrice": {"price": {"amount": "49.90"}}, "userErrors": []}}}


@pytest.mark.parametrize(
    ("field", "error"),
    [
        ("setChannelPrice.amount", {"field": "amount", "code": "PRICE_NOT_POSITIVE"}),
        ("setPriceControl.floor", {"field": "floor", "code": "PRICE_NOT_POSITIVE"}),
        ("setPriceTiers.tiers.amount", {"field": "tiers", "code": "PRICE_NOT_POSITIVE"}),
        ("topUpPrepaidBalance.amount", {"field": "amount", "code": "INVALID_AMOUNT"}),
        ("recordSupplierDeposit.amount", {"field": "amount", "code": "INVALID_AMOUNT"}),
    ],
)
async def test_a_negative_amount_where_a_price_is_meant_is_a_user_error(
    shop: Shop, ground: Ground, field: str, error: dict[str, str]
) -> None:
    before = await written(shop.db, ground)

    answer = await shop.gql(*money_input(field, ground, "-9.90"), key=shop.keys.admin)

    [payload] = answer["data"].values()
    assert payload["userErrors"] == [error]
    assert await written(shop.db, ground) == before
