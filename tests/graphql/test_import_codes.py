"""Operators fill code pools with importCardCodes; buyers see the stock, presale orders get codes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from models import CardCode
from schema.relay import encode_id
from services.core.secret_box import SecretBox
from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

IMPORT = """
mutation Import($skuId: ID!, $codes: [CardCodeInput!]!) {
  importCardCodes(skuId: $skuId, codes: $codes) { imported duplicates userErrors { field message code } }
}
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id lines { presaleQuantity } } userErrors { field code } }
}
"""
ORDER = """
query Order($id: ID!) { order(id: $id) { lines { quantity presaleQuantity } } }
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    # The response cache is on, as in production: an import must make cached stock stale.
    async with open_shop(
        tmp_path_factory.mktemp("code-import"), response_cache=True, response_cache_seconds=3600
    ) as opened:
        yield opened


async def import_codes(
    shop: Shop, sku: StockedSku | str, codes: list[dict[str, Any]], *, key: str | None = None
) -> dict[str, Any]:
    sku_id = sku.gid if isinstance(sku, StockedSku) else sku
    return await shop.gql(IMPORT, {"skuId": sku_id, "codes": codes}, key=key or shop.keys.admin)


def payload(imported: int, duplicates: int = 0, *errors: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "data": {
            "importCardCodes": {
                "imported": imported,
                "duplicates": duplicates,
                "userErrors": [{"field": f, "message": m, "code": c} for f, m, c in errors],
            }
        }
    }


async def test_imported_codes_are_for_sale_at_once(shop: Shop) -> None:
    steam = await shop.shelf.card_codes(0)
    assert await shop.stock(steam) == {"available": 0, "reserved": 0, "presale": 0}  # now cached

    answer = await import_codes(shop, steam, [{"secret": f"STEAM-{n}"} for n in range(3)])

    assert answer == payload(3)
    assert await shop.stock(steam) == {"available": 3, "reserved": 0, "presale": 0}


async def test_secrets_are_stored_encrypted_with_their_card_numbers(shop: Shop) -> None:
    qq = await shop.shelf.card_codes(0)

    await import_codes(
        shop,
        qq,
        [
            {
                "secret": "QQ-SECRET-0001",
                "number": "卡号0001",
                "expiresAt": "2030-12-31T23:59:59+08:00",
            },
            {"secret": "QQ-SECRET-0002"},
        ],
    )

    async with shop.db.sessions() as session:
        stored = (
            await session.execute(
                select(CardCode.secret_ciphertext, CardCode.number, CardCode.expires_at)
                .where(CardCode.sku_id == qq.pk)
                .order_by(CardCode.id)
            )
        ).all()
    assert all(b"QQ-SECRET" not in ciphertext for ciphertext, _, _ in stored)
    box = SecretBox(shop.settings.secret_key)
    assert [
        (box.open(c, context=str(qq.pk).encode()), n, e.isoformat() if e else None)
        for c, n, e in stored
    ] == [
        ("QQ-SECRET-0001", "卡号0001", "2030-12-31T15:59:59+00:00"),
        ("QQ-SECRET-0002", None, None),
    ]


async def test_each_bad_code_is_a_user_error_and_the_good_ones_are_imported(shop: Shop) -> None:
    netease = await shop.shelf.card_codes(0)

    answer = await import_codes(
        shop,
        netease,
        [
            {"secret": "NE-OK-1"},
            {"secret": " "},
            {"secret": "NE-OK-2", "uses": 3},
            {"secret": "NE-OK-3", "expiresAt": "2020-01-01T00:00:00Z"},
            {"secret": "NE-OK-4", "number": "N" * 129},
            {"secret": "NE-OK-1"},
            {"secret": "NE-OK-5", "number": "NE-0005"},
        ],
    )

    assert answer == payload(
        2,
        1,
        ("codes.1.secret", "the secret is empty", "SECRET_REQUIRED"),
        ("codes.2.uses", "only a SERIAL SKU's codes have more than one use", "INVALID_USES"),
        ("codes.3.expiresAt", "the code has already expired", "ALREADY_EXPIRED"),
        ("codes.4.number", "a card number is at most 128 characters", "NUMBER_TOO_LONG"),
        ("codes.5.secret", "the same code appears earlier in this import", "DUPLICATE_CODE"),
    )
    assert "NE-OK" not in str(answer)
    assert await shop.stock(netease) == {"available": 2, "reserved": 0, "presale": 0}


async def test_importing_the_same_codes_again_adds_nothing(shop: Shop) -> None:
    iqiyi = await shop.shelf.card_codes(0)
    codes = [{"secret": "IQY-1"}, {"secret": "IQY-2"}]
    assert await import_codes(shop, iqiyi, codes) == payload(2)

    again = await import_codes(shop, iqiyi, [*codes, {"secret": "IQY-3"}])

    assert again == payload(
        1,
        2,
        ("codes.0.secret", "the code is already in the pool", "DUPLICATE_CODE"),
        ("codes.1.secret", "the code is already in the pool", "DUPLICATE_CODE"),
    )
    assert await shop.stock(iqiyi) == {"available": 3, "reserved": 0, "presale": 0}


async def test_a_code_already_in_another_skus_pool_is_a_duplicate(shop: Shop) -> None:
    steam, xbox = await shop.shelf.card_codes(0), await shop.shelf.card_codes(0)
    assert await import_codes(shop, steam, [{"secret": "TWIN-1"}, {"secret": "TWIN-2"}]) == payload(2)

    answer = await import_codes(shop, xbox, [{"secret": "TWIN-1"}, {"secret": "XBOX-1"}, {"secret": " TWIN-2 "}])

    assert answer == payload(
        1,
        2,
        ("codes.0.secret", "the code is already in the pool", "DUPLICATE_CODE"),
        ("codes.2.secret", "the code is already in the pool", "DUPLICATE_CODE"),
    )
    assert await shop.stock(steam) == {"available": 2, "reserved": 0, "presale": 0}
    assert await shop.stock(xbox) == {"available": 1, "reserved": 0, "presale": 0}


async def test_two_imports_of_the_same_codes_into_two_skus_at_once_add_each_code_once(shop: Shop) -> None:
    steam, xbox = await shop.shelf.card_codes(0), await shop.shelf.card_codes(0)
    codes = [{"secret": f"RACE-{n:04d}"} for n in range(1000)]

    # Opposite orders, so neither import can simply queue behind the other's first code.
    answers = await asyncio.gather(import_codes(shop, steam, codes), import_codes(shop, xbox, codes[::-1]))

    results = sorted((a["data"]["importCardCodes"]["imported"], a["data"]["importCardCodes"]["duplicates"]) for a in answers)
    assert results == [(0, 1000), (1000, 0)]
    available = [(await shop.stock(sku))["available"] for sku in (steam, xbox)]
    assert sorted(available) == [0, 1000]


async def test_a_serial_is_imported_with_its_uses(shop: Shop) -> None:
    licence = await shop.shelf.serials(0, uses=1)

    assert await import_codes(
        shop, licence, [{"secret": "SN-1", "uses": 5}, {"secret": "SN-2"}]
    ) == payload(2)
    assert await shop.stock(licence) == {"available": 6, "reserved": 0, "presale": 0}


async def test_a_thousand_codes_a_call_and_no_more(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(0)

    too_many = await import_codes(shop, coins, [{"secret": f"QB-{n}"} for n in range(1001)])
    enough = await import_codes(shop, coins, [{"secret": f"QB-{n}"} for n in range(1000)])

    assert too_many == payload(
        0,
        0,
        (
            "codes",
            "at most 1,000 codes a call; use `quanyi import-codes` for files",
            "TOO_MANY_CODES",
        ),
    )
    assert enough == payload(1000)
    assert (await shop.stock(coins))["available"] == 1000


async def test_only_skus_with_a_code_pool_take_codes(shop: Shop) -> None:
    top_up = await shop.shelf.counter(10)

    assert await import_codes(shop, top_up, [{"secret": "X-1"}]) == payload(
        0, 0, ("skuId", "a DIRECT_RECHARGE SKU has no code pool", "WRONG_SKU_KIND")
    )
    assert await import_codes(shop, encode_id("Sku", 10**9), [{"secret": "X-1"}]) == payload(
        0, 0, ("skuId", "no such SKU", "NOT_FOUND")
    )
    not_a_sku = await import_codes(
        shop, encode_id("Product", shop.shelf.product_id), [{"secret": "X-1"}]
    )
    assert not_a_sku["data"] is None
    assert [e["extensions"]["code"] for e in not_a_sku["errors"]] == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    ("caller", "code"), [(None, "UNAUTHENTICATED"), ("taobao", "FORBIDDEN"), ("web", "FORBIDDEN")]
)
async def test_only_operators_import_codes(shop: Shop, caller: str | None, code: str) -> None:
    steam = await shop.shelf.card_codes(0)
    key = getattr(shop.keys, caller) if caller else None

    answer = await shop.gql(
        IMPORT, {"skuId": steam.gid, "codes": [{"secret": "NOT-YOURS"}]}, key=key
    )

    assert answer["data"] is None
    assert [e["extensions"]["code"] for e in answer["errors"]] == [code]
    assert "NOT-YOURS" not in str(answer)
    assert await shop.ledger.codes(steam) == {}


async def test_presale_orders_get_the_imported_codes_oldest_first(shop: Shop) -> None:
    coins = await shop.shelf.card_codes(0, presale_cap=5)
    older = (await shop.gql(PLACE, {"input": order_input((coins, 2))}))["data"]["placeOrder"][
        "order"
    ]
    newer = (await shop.gql(PLACE, {"input": order_input((coins, 2))}))["data"]["placeOrder"][
        "order"
    ]
    assert [older["lines"], newer["lines"]] == [[{"presaleQuantity": 2}]] * 2
    assert await shop.stock(coins) == {"available": 0, "reserved": 0, "presale": 1}

    assert await import_codes(shop, coins, [{"secret": f"PRE-{n}"} for n in range(3)]) == payload(3)

    lines = [
        (await shop.gql(ORDER, {"id": o["id"]}, key=shop.keys.admin))["data"]["order"]["lines"]
        for o in (older, newer)
    ]
    assert lines == [
        [{"quantity": 2, "presaleQuantity": 0}],
        [{"quantity": 2, "presaleQuantity": 1}],
    ]
    assert await shop.ledger.codes(coins) == {"RESERVED": 3}
    assert await shop.ledger.presale_used(coins) == 1
    assert await shop.stock(coins) == {"available": 0, "reserved": 3, "presale": 4}
