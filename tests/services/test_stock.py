"""What a SKU has to sell: code pools by status, counters for top-ups, bundles by components."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.catalog import NO_STOCK, CodeStatus, SkuKind, StockFigures
from models import Product, Sku
from services.core.database import Database
from services.inventory.stock import stock_for
from tests.services import catalog_rows as rows
from tests.support import StatementCounter

AVAILABLE, RESERVED, SOLD, VOID = (
    CodeStatus.AVAILABLE,
    CodeStatus.RESERVED,
    CodeStatus.SOLD,
    CodeStatus.VOID,
)
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
async def shelf(catalog_db: Database) -> Product:
    """A withdrawn product to hang test SKUs on, so no catalog page ever shows them."""
    async with catalog_db.sessions() as session, session.begin():
        brand = await rows.brand(session, rows.unique("brand"))
        category = await rows.category(session, rows.unique("category"))
        return await rows.product(
            session, brand=brand, category=category, name="测试货架", active=False
        )


async def _stock(db: Database, *skus: Sku) -> dict[int, StockFigures]:
    async with db.read_sessions() as session:
        return await stock_for(session, [s.id for s in skus])


async def test_card_codes_count_available_and_reserved_but_not_sold_or_void(
    catalog_db: Database, shelf: Product
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        qq_coins = await rows.sku(session, shelf, SkuKind.CARD_CODE)
        rows.codes(session, qq_coins, AVAILABLE, 3)
        rows.codes(session, qq_coins, RESERVED, 2)
        rows.codes(session, qq_coins, SOLD, 4)
        rows.codes(session, qq_coins, VOID, 1)

    assert await _stock(catalog_db, qq_coins) == {
        qq_coins.id: StockFigures(available=3, reserved=2, presale=0)
    }


async def test_a_card_code_is_one_unit_even_if_imported_with_several_uses(
    catalog_db: Database, shelf: Product
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        steam = await rows.sku(session, shelf, SkuKind.CARD_CODE)
        rows.codes(session, steam, AVAILABLE, 2, uses=5)
        rows.codes(session, steam, RESERVED, 1, uses=3)

    assert await _stock(catalog_db, steam) == {steam.id: StockFigures(available=2, reserved=1)}


async def test_a_serial_sells_its_remaining_uses(catalog_db: Database, shelf: Product) -> None:
    async with catalog_db.sessions() as session, session.begin():
        license_key = await rows.sku(session, shelf, SkuKind.SERIAL)
        rows.codes(session, license_key, AVAILABLE, 2, uses=5)
        rows.codes(session, license_key, AVAILABLE, 1, uses=3)  # activated twice already
        rows.codes(session, license_key, RESERVED, 1, uses=5)
        rows.codes(session, license_key, SOLD, 3, uses=5)
        rows.codes(session, license_key, VOID, 1, uses=5)

    assert await _stock(catalog_db, license_key) == {
        license_key.id: StockFigures(available=13, reserved=5)
    }


async def test_a_code_sku_offers_its_presale_cap(catalog_db: Database, shelf: Product) -> None:
    async with catalog_db.sessions() as session, session.begin():
        new_release = await rows.sku(session, shelf, SkuKind.CARD_CODE, presale_cap=50)
        rows.codes(session, new_release, AVAILABLE, 1)

    assert await _stock(catalog_db, new_release) == {new_release.id: StockFigures(1, 0, presale=50)}


async def test_expired_codes_are_not_for_sale_but_reserved_ones_stay_held(
    catalog_db: Database, shelf: Product
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        gift_card = await rows.sku(session, shelf, SkuKind.CARD_CODE)
        rows.codes(session, gift_card, AVAILABLE, 2)  # no expiry
        rows.codes(session, gift_card, AVAILABLE, 3, expires_at=NOW - timedelta(days=1))
        rows.codes(session, gift_card, AVAILABLE, 4, expires_at=NOW + timedelta(days=30))
        rows.codes(session, gift_card, RESERVED, 1, expires_at=NOW - timedelta(days=1))

    assert await _stock(catalog_db, gift_card) == {
        gift_card.id: StockFigures(available=6, reserved=1)
    }


async def test_codes_expiring_later_are_not_for_sale_once_that_time_comes(
    catalog_db: Database, shelf: Product
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        gift_card = await rows.sku(session, shelf, SkuKind.CARD_CODE)
        rows.codes(session, gift_card, AVAILABLE, 4, expires_at=NOW + timedelta(days=30))
        rows.codes(session, gift_card, AVAILABLE, 1, expires_at=NOW + timedelta(days=90))

    async with catalog_db.read_sessions() as session:
        next_month = await stock_for(session, [gift_card.id], now=NOW + timedelta(days=31))

    assert next_month == {gift_card.id: StockFigures(available=1, reserved=0)}


async def test_a_top_up_sells_what_is_on_hand_less_what_is_reserved(
    catalog_db: Database, shelf: Product
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        video_month = await rows.sku(session, shelf, SkuKind.DIRECT_RECHARGE, presale_cap=10)
        rows.counter(session, video_month, on_hand=500, reserved=120)

    assert await _stock(catalog_db, video_month) == {
        video_month.id: StockFigures(380, 120, presale=0)
    }


async def test_a_top_up_reserved_beyond_its_counter_sells_nothing(
    catalog_db: Database, shelf: Product
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        recounted = await rows.sku(session, shelf, SkuKind.DIRECT_RECHARGE)
        rows.counter(session, recounted, on_hand=5, reserved=8)

    assert await _stock(catalog_db, recounted) == {
        recounted.id: StockFigures(available=0, reserved=8)
    }


async def test_skus_without_codes_or_counter_have_nothing_to_sell(
    catalog_db: Database, shelf: Product
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        no_codes = await rows.sku(session, shelf, SkuKind.CARD_CODE)
        no_counter = await rows.sku(session, shelf, SkuKind.DIRECT_RECHARGE)

    assert await _stock(catalog_db, no_codes, no_counter) == {
        no_codes.id: NO_STOCK,
        no_counter.id: NO_STOCK,
    }


async def test_a_bundle_sells_as_often_as_its_scarcest_component_allows(
    catalog_db: Database, shelf: Product
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        coins = await rows.sku(session, shelf, SkuKind.CARD_CODE)
        rows.codes(session, coins, AVAILABLE, 7)
        rows.codes(session, coins, RESERVED, 5)
        membership = await rows.sku(session, shelf, SkuKind.DIRECT_RECHARGE)
        rows.counter(session, membership, on_hand=10, reserved=2)
        serial = await rows.sku(session, shelf, SkuKind.SERIAL)
        rows.codes(session, serial, AVAILABLE, 1, uses=9)
        pack = await rows.sku(session, shelf, SkuKind.BUNDLE)
        rows.bundle_items(session, pack, (coins, 2), (membership, 1), (serial, 2))

    assert await _stock(catalog_db, pack) == {
        pack.id: StockFigures(available=3, reserved=0, presale=0)
    }


async def test_a_bundle_with_a_sold_out_component_shows_zero(
    catalog_db: Database, shelf: Product
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        plenty = await rows.sku(session, shelf, SkuKind.DIRECT_RECHARGE)
        rows.counter(session, plenty, on_hand=1000)
        sold_out = await rows.sku(session, shelf, SkuKind.CARD_CODE)
        rows.codes(session, sold_out, SOLD, 20)
        pack = await rows.sku(session, shelf, SkuKind.BUNDLE)
        rows.bundle_items(session, pack, (plenty, 1), (sold_out, 1))

    assert await _stock(catalog_db, pack, plenty, sold_out) == {
        pack.id: NO_STOCK,
        plenty.id: StockFigures(1000, 0),
        sold_out.id: NO_STOCK,
    }


async def test_a_bundle_with_no_components_cannot_be_sold(
    catalog_db: Database, shelf: Product
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        empty_pack = await rows.sku(session, shelf, SkuKind.BUNDLE)

    assert await _stock(catalog_db, empty_pack) == {empty_pack.id: NO_STOCK}


async def test_an_unknown_sku_has_nothing_to_sell(catalog_db: Database) -> None:
    async with catalog_db.read_sessions() as session:
        assert await stock_for(session, [2_000_000_000]) == {2_000_000_000: NO_STOCK}
        assert await stock_for(session, []) == {}


async def test_stock_of_many_skus_takes_as_many_statements_as_of_one(
    catalog_db: Database, shelf: Product
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        skus = [await rows.sku(session, shelf, kind) for kind in SkuKind for _ in range(3)]
        for sku in skus:
            rows.codes(session, sku, AVAILABLE, 2)
            rows.counter(session, sku, on_hand=4)
        for pack in (s for s in skus if s.kind is SkuKind.BUNDLE):
            rows.bundle_items(session, pack, (skus[0], 1))
    counter = StatementCounter()
    counter.attach(catalog_db.read_engine)

    _, one = await counter.measure(_stock(catalog_db, skus[0]))
    _, twelve = await counter.measure(_stock(catalog_db, *skus))

    assert one == twelve == 5, counter.seen
