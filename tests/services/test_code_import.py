"""Codes join a pool encrypted, once each, and every row left out says why."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from domain.card_codes import CodeInput, Rejection
from domain.catalog import SkuKind, StockFigures
from models import CardCode, Product, Sku
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.inventory.code_import import ImportResult, WrongSkuKind, import_codes
from services.inventory.stock import stock_for
from tests.services import catalog_rows as rows
from tests.support import new_secret_key

NOW = datetime.now(UTC)
LATER = NOW + timedelta(days=365)
R = Rejection


@pytest.fixture(scope="module")
def shelf(import_shelf: Product) -> Product:
    return import_shelf


async def new_sku(db: Database, shelf: Product, kind: SkuKind = SkuKind.CARD_CODE) -> Sku:
    async with db.sessions() as session, session.begin():
        return await rows.sku(session, shelf, kind)


async def run_import(
    db: Database, box: SecretBox, sku: Sku, codes: list[CodeInput]
) -> ImportResult:
    async with db.sessions() as session, session.begin():
        row = await session.get_one(Sku, sku.id)
        return await import_codes(session, box, row, codes, now=NOW)


def codes(*secrets: str) -> list[CodeInput]:
    return [CodeInput(row=index, secret=secret) for index, secret in enumerate(secrets)]


def outcome(result: ImportResult) -> tuple[int, int, list[tuple[int, str | None, Rejection]]]:
    return (
        result.imported,
        result.duplicates,
        [(r.row, r.field, r.reason) for r in result.rejections],
    )


async def test_secrets_are_stored_encrypted_and_only_the_key_opens_them(
    catalog_db: Database, shelf: Product, box: SecretBox
) -> None:
    steam = await new_sku(catalog_db, shelf)
    given = [
        CodeInput(row=0, secret="STEAM-AAAA-1111", number="No.0001", expires_at=LATER),
        CodeInput(row=1, secret="  STEAM-BBBB-2222  "),
    ]

    result = await run_import(catalog_db, box, steam, given)

    assert outcome(result) == (2, 0, [])
    async with catalog_db.sessions() as session:
        stored = list(
            await session.scalars(
                select(CardCode).where(CardCode.sku_id == steam.id).order_by(CardCode.id)
            )
        )
    assert all(b"STEAM-" not in code.secret_ciphertext for code in stored)
    context = str(steam.id).encode()
    assert [
        (box.open(c.secret_ciphertext, context=context), c.number, c.expires_at, c.uses_left)
        for c in stored
    ] == [
        ("STEAM-AAAA-1111", "No.0001", LATER, 1),
        ("STEAM-BBBB-2222", None, None, 1),  # trimmed
    ]
    assert [c.secret_digest for c in stored] == [
        box.digest("STEAM-AAAA-1111"),
        box.digest("STEAM-BBBB-2222"),
    ]
    with pytest.raises(InvalidTag):
        SecretBox(new_secret_key()).open(stored[0].secret_ciphertext, context=context)
    with pytest.raises(InvalidTag):  # bound to its SKU: no moving a ciphertext to another SKU
        box.open(stored[0].secret_ciphertext, context=str(steam.id + 1).encode())


async def test_a_duplicate_is_found_in_the_same_batch_and_in_the_pool(
    catalog_db: Database, shelf: Product, box: SecretBox
) -> None:
    netease = await new_sku(catalog_db, shelf)

    first = await run_import(catalog_db, box, netease, codes("NE-1", "NE-2", "NE-1", " NE-2"))
    second = await run_import(catalog_db, box, netease, codes("NE-3", "NE-2", "NE-4", "NE-3"))

    assert outcome(first) == (
        2,
        2,
        [(2, "secret", R.DUPLICATE_CODE), (3, "secret", R.DUPLICATE_CODE)],
    )
    assert [r.message for r in first.rejections] == [
        "the same code appears earlier in this import"
    ] * 2
    assert outcome(second) == (
        2,
        2,
        [(1, "secret", R.DUPLICATE_CODE), (3, "secret", R.DUPLICATE_CODE)],
    )
    assert [r.message for r in second.rejections] == [
        "the code is already in the pool",
        "the same code appears earlier in this import",
    ]
    assert await available(catalog_db, netease) == 4


async def test_a_code_already_in_another_skus_pool_is_a_duplicate(
    catalog_db: Database, shelf: Product, box: SecretBox
) -> None:
    one, other = await new_sku(catalog_db, shelf), await new_sku(catalog_db, shelf)

    results = [await run_import(catalog_db, box, sku, codes("SHARED-1", f"OWN-{sku.id}")) for sku in (one, other)]

    assert [outcome(r) for r in results] == [(2, 0, []), (1, 1, [(0, "secret", R.DUPLICATE_CODE)])]
    assert [r.message for r in results[1].rejections] == ["the code is already in the pool"]
    assert (await available(catalog_db, one), await available(catalog_db, other)) == (2, 1)


async def test_each_invalid_row_is_reported_and_the_valid_ones_are_imported(
    catalog_db: Database, shelf: Product, box: SecretBox
) -> None:
    qq = await new_sku(catalog_db, shelf)
    given = [
        CodeInput(row=0, secret="QQ-OK-1"),
        CodeInput(row=1, secret="   "),
        CodeInput(row=2, secret="Q" * 257),
        CodeInput(row=3, secret="QQ\t2"),
        CodeInput(row=4, secret="QQ-OK-2", number="N" * 129),
        CodeInput(row=5, secret="QQ-OK-3", uses=2),  # a card code is used once
        CodeInput(row=6, secret="QQ-OK-4", uses=0),
        CodeInput(row=7, secret="QQ-OK-5", expires_at=datetime(2030, 1, 1)),  # no time zone
        CodeInput(row=8, secret="QQ-OK-6", expires_at=NOW - timedelta(seconds=1)),
        CodeInput(
            row=9,
            secret="Q" * 256,
            number="卡号 0009",
            expires_at=datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=8))),
        ),
        CodeInput(row=10, secret="QQ-\udcff"),  # bytes a file reader could not decode
    ]

    result = await run_import(catalog_db, box, qq, given)

    assert outcome(result) == (
        2,
        0,
        [
            (1, "secret", R.SECRET_REQUIRED),
            (2, "secret", R.SECRET_TOO_LONG),
            (3, "secret", R.NOT_PRINTABLE),
            (4, "number", R.NUMBER_TOO_LONG),
            (5, "uses", R.INVALID_USES),
            (6, "uses", R.INVALID_USES),
            (7, "expires_at", R.INVALID_TIME),
            (8, "expires_at", R.ALREADY_EXPIRED),
            (10, "secret", R.NOT_UTF8),
        ],
    )
    assert result.invalid == 9
    assert await available(catalog_db, qq) == 2


async def test_times_and_uses_the_database_cannot_hold_are_rejected_rows(
    catalog_db: Database, shelf: Product, box: SecretBox
) -> None:
    # As a CSV file may carry them: years without a UTC form, and counts beyond an integer column.
    licence = await new_sku(catalog_db, shelf, SkuKind.SERIAL)
    given = [
        CodeInput(row=2, secret="SN-Y9999", expires_at=datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-8)))),
        CodeInput(row=3, secret="SN-Y2150", expires_at=datetime(2150, 1, 1, tzinfo=UTC)),
        CodeInput(row=4, secret="SN-HUGE", uses=2**31),
        CodeInput(row=5, secret="SN-OK", uses=2**31 - 1, expires_at=datetime(2099, 12, 31, tzinfo=UTC)),
    ]

    result = await run_import(catalog_db, box, licence, given)

    assert outcome(result) == (
        1, 0, [(2, "expires_at", R.INVALID_TIME), (3, "expires_at", R.INVALID_TIME), (4, "uses", R.INVALID_USES)],
    )
    assert [r.message for r in result.rejections] == [
        "a time is from 2000-01-01 to 2099-12-31 (UTC)", "a time is from 2000-01-01 to 2099-12-31 (UTC)",
        "uses must be from 1 to 2,147,483,647",
    ]


async def test_a_serial_takes_several_uses_and_sells_each(
    catalog_db: Database, shelf: Product, box: SecretBox
) -> None:
    licence = await new_sku(catalog_db, shelf, SkuKind.SERIAL)

    result = await run_import(
        catalog_db,
        box,
        licence,
        [
            CodeInput(row=0, secret="SN-1", uses=5),
            CodeInput(row=1, secret="SN-2"),
            CodeInput(row=2, secret="SN-3", uses=-1),
        ],
    )

    assert outcome(result) == (2, 0, [(2, "uses", R.INVALID_USES)])
    assert await available(catalog_db, licence) == 6


async def test_imported_codes_are_available_to_sell(
    catalog_db: Database, shelf: Product, box: SecretBox
) -> None:
    steam = await new_sku(catalog_db, shelf)
    assert await available(catalog_db, steam) == 0

    await run_import(catalog_db, box, steam, codes(*(f"STEAM-{n}" for n in range(25))))

    async with catalog_db.read_sessions() as session:
        assert await stock_for(session, [steam.id]) == {
            steam.id: StockFigures(available=25, reserved=0, presale=0)
        }


async def test_a_sku_without_a_code_pool_takes_no_codes(
    catalog_db: Database, shelf: Product, box: SecretBox
) -> None:
    top_up = await new_sku(catalog_db, shelf, SkuKind.DIRECT_RECHARGE)

    with pytest.raises(WrongSkuKind):
        await run_import(catalog_db, box, top_up, codes("TOPUP-1"))


async def test_two_imports_of_the_same_codes_at_once_add_each_code_once(
    catalog_db: Database, shelf: Product, box: SecretBox
) -> None:
    iqiyi = await new_sku(catalog_db, shelf)
    batch = codes(*(f"IQY-{n:04d}" for n in range(300)))

    results = await asyncio.gather(*(run_import(catalog_db, box, iqiyi, batch) for _ in range(3)))

    assert sorted(r.imported for r in results) == [0, 0, 300]
    assert sorted(r.duplicates for r in results) == [0, 300, 300]
    assert await available(catalog_db, iqiyi) == 300


async def test_two_imports_of_the_same_codes_into_two_skus_at_once_add_each_code_once(
    catalog_db: Database, shelf: Product, box: SecretBox
) -> None:
    one, other = await new_sku(catalog_db, shelf), await new_sku(catalog_db, shelf)
    batch = codes(*(f"TWIN-{n:04d}" for n in range(3000)))
    # Opposite orders: without taking turns, each would wait on the other's first row.
    backwards = [CodeInput(row=c.row, secret=c.secret) for c in reversed(batch)]

    results = await asyncio.gather(run_import(catalog_db, box, one, batch), run_import(catalog_db, box, other, backwards))

    assert sorted(r.imported for r in results) == [0, 3000]
    assert sorted(r.duplicates for r in results) == [0, 3000]
    assert sorted([await available(catalog_db, one), await available(catalog_db, other)]) == [0, 3000]


async def test_no_secret_reaches_the_logs_even_with_sql_logging_on(
    catalog_db: Database, shelf: Product, box: SecretBox, caplog: pytest.LogCaptureFixture
) -> None:
    steam = await new_sku(catalog_db, shelf)
    marker = "LEAKCHECK"
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements and their parameters

    async with catalog_db.sessions() as session, session.begin():
        row = await session.get_one(Sku, steam.id)
        await import_codes(
            session,
            box,
            row,
            [
                CodeInput(row=0, secret=f"{marker}-1", number="N-1"),
                CodeInput(row=1, secret=f"{marker}-1"),
                CodeInput(row=2, secret=f"{marker}\x00"),
                CodeInput(row=3, secret=marker * 40),
                CodeInput(row=4, secret=f"{marker}-2", uses=3),
            ],
            now=NOW,
        )

    assert "INSERT INTO card_code" in caplog.text  # the SQL was logged...
    assert marker not in caplog.text  # ...but never a secret


async def available(db: Database, sku: Sku) -> int:
    async with db.read_sessions() as session:
        return (await stock_for(session, [sku.id]))[sku.id].available
