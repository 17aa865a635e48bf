"""Catalog reads behind the storefront: keyset pages, filters, SKUs and their suppliers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from domain.catalog import SkuKind
from models import Brand, Category, Product, Sku
from services.catalog import reads as catalog
from services.catalog.reads import ProductFilter
from services.core.database import Database
from tests.services import catalog_rows as rows


@dataclass(frozen=True)
class Shelf:
    """The module's catalog, by name; products are inserted in this order."""

    qq_coins: Product
    video_vip: Product
    steam: Product
    gift_pack: Product
    office: Product
    withdrawn_vip: Product
    backslash: Product
    discontinued_serial: Product
    skus: dict[str, Sku]

    def ids(self, *products: Product) -> list[int]:
        return [p.id for p in products]


@pytest.fixture(scope="module")
async def shelf(catalog_db: Database) -> Shelf:
    async with catalog_db.sessions() as session, session.begin():
        tencent, valve = (
            await rows.brand(session, "tencent", "腾讯"),
            await rows.brand(session, "valve", "Valve"),
        )
        cards, video, packs = (
            await rows.category(session, "platform-card"),
            await rows.category(session, "video-vip"),
            await rows.category(session, "gift-pack"),
        )

        async def add(
            name: str,
            brand: Brand,
            category: Category,
            description: str = "",
            *,
            slug: str | None = None,
            active: bool = True,
        ) -> Product:
            return await rows.product(
                session,
                brand=brand,
                category=category,
                name=name,
                description=description,
                slug=slug,
                active=active,
            )

        qq_coins = await add(
            "Q币卡", tencent, cards, "腾讯 Q 币充值卡密，官方渠道。", slug="qq-coins"
        )
        video_vip = await add(
            "腾讯视频 VIP", tencent, video, "会员直充到 QQ 账号。", slug="tencent-video-vip"
        )
        steam = await add("Steam Wallet", valve, cards, "Steam 国区钱包充值码。")
        gift_pack = await add("100% 满意礼包", tencent, packs, "Q币 + 会员。")
        office = await add("Office_2024 序列号", valve, cards, "多次激活。")
        withdrawn_vip = await add(
            "旧版 VIP 年卡", tencent, video, "已下架。", slug="old-vip", active=False
        )
        backslash = await add("C:\\Games 点卡", valve, cards)
        discontinued_serial = await add("停售序列号", tencent, cards)

        skus = {
            "QB-10": await rows.sku(session, qq_coins, SkuKind.CARD_CODE, price_fen=990),
            "QB-100": await rows.sku(session, qq_coins, SkuKind.CARD_CODE, price_fen=9880),
            "QB-30": await rows.sku(session, qq_coins, SkuKind.CARD_CODE, price_fen=2970),
            "QB-OLD": await rows.sku(
                session, qq_coins, SkuKind.CARD_CODE, price_fen=500, active=False
            ),
            "TXV": await rows.sku(session, video_vip, SkuKind.DIRECT_RECHARGE),
            "STEAM": await rows.sku(session, steam, SkuKind.CARD_CODE),
            "PACK": await rows.sku(session, gift_pack, SkuKind.BUNDLE),
            "OFFICE": await rows.sku(session, office, SkuKind.SERIAL),
            "OLD-VIP": await rows.sku(session, withdrawn_vip, SkuKind.DIRECT_RECHARGE),
            "GAMES": await rows.sku(session, backslash, SkuKind.CARD_CODE),
            "OLD-SERIAL": await rows.sku(
                session, discontinued_serial, SkuKind.SERIAL, active=False
            ),
        }
        rows.bundle_items(session, skus["PACK"], (skus["TXV"], 1), (skus["QB-30"], 2))
    return Shelf(
        qq_coins,
        video_vip,
        steam,
        gift_pack,
        office,
        withdrawn_vip,
        backslash,
        discontinued_serial,
        skus,
    )


EVERYTHING = ProductFilter()


async def _page(
    db: Database, f: ProductFilter = EVERYTHING, *, after_id: int | None = None, limit: int = 20
) -> tuple[list[int], bool]:
    async with db.read_sessions() as session:
        products, more = await catalog.product_page(session, f, after_id=after_id, limit=limit)
    return [p.id for p in products], more


async def _count(db: Database, f: ProductFilter) -> int:
    async with db.read_sessions() as session:
        return await catalog.count_products(session, f)


async def test_pages_of_three_walk_every_active_product_once_in_order(
    catalog_db: Database, shelf: Shelf
) -> None:
    first = await _page(catalog_db, limit=3)
    second = await _page(catalog_db, after_id=first[0][-1], limit=3)
    third = await _page(catalog_db, after_id=second[0][-1], limit=3)

    assert [first, second, third] == [
        (shelf.ids(shelf.qq_coins, shelf.video_vip, shelf.steam), True),
        (shelf.ids(shelf.gift_pack, shelf.office, shelf.backslash), True),
        (shelf.ids(shelf.discontinued_serial), False),
    ]


async def test_a_page_that_ends_exactly_at_the_last_product_has_no_next(
    catalog_db: Database, shelf: Shelf
) -> None:
    assert await _page(catalog_db, after_id=shelf.office.id, limit=2) == (
        shelf.ids(shelf.backslash, shelf.discontinued_serial),
        False,
    )


async def test_a_page_after_the_last_product_is_empty(catalog_db: Database, shelf: Shelf) -> None:
    assert await _page(catalog_db, after_id=shelf.discontinued_serial.id) == ([], False)


async def test_an_empty_page_still_says_whether_products_follow(
    catalog_db: Database, shelf: Shelf
) -> None:
    assert await _page(catalog_db, limit=0) == ([], True)


async def test_a_cursor_on_a_withdrawn_product_continues_after_it(
    catalog_db: Database, shelf: Shelf
) -> None:
    assert await _page(catalog_db, after_id=shelf.withdrawn_vip.id, limit=1) == (
        shelf.ids(shelf.backslash),
        True,
    )


@pytest.mark.parametrize(
    ("f", "expected"),
    [
        (
            ProductFilter(brand="tencent"),
            ["qq_coins", "video_vip", "gift_pack", "discontinued_serial"],
        ),
        (ProductFilter(brand="valve"), ["steam", "office", "backslash"]),
        (ProductFilter(brand="nintendo"), []),
        (ProductFilter(category="video-vip"), ["video_vip"]),
        (ProductFilter(category="gift-pack"), ["gift_pack"]),
        (ProductFilter(kind=SkuKind.BUNDLE), ["gift_pack"]),
        (ProductFilter(kind=SkuKind.SERIAL), ["office"]),  # the discontinued serial SKU is inactive
        (ProductFilter(kind=SkuKind.DIRECT_RECHARGE), ["video_vip"]),
        (ProductFilter(kind=SkuKind.CARD_CODE), ["qq_coins", "steam", "backslash"]),
        (ProductFilter(text="vip"), ["video_vip"]),  # the withdrawn VIP product stays hidden
        (ProductFilter(text="STEAM"), ["steam"]),
        (ProductFilter(text="Q币"), ["qq_coins", "gift_pack"]),  # name, then description
        (ProductFilter(text="钱包"), ["steam"]),
        (ProductFilter(text="%"), ["gift_pack"]),
        (ProductFilter(text="100%"), ["gift_pack"]),
        (ProductFilter(text="_"), ["office"]),
        (ProductFilter(text="office_"), ["office"]),
        (ProductFilter(text="q_"), []),  # "_" is not a wildcard
        (ProductFilter(text="q%卡"), []),  # nor is "%"
        (ProductFilter(text="\\"), ["backslash"]),
        (ProductFilter(text="c:\\games"), ["backslash"]),
        (
            ProductFilter(text=""),
            [
                "qq_coins",
                "video_vip",
                "steam",
                "gift_pack",
                "office",
                "backslash",
                "discontinued_serial",
            ],
        ),
        (ProductFilter(brand="tencent", kind=SkuKind.CARD_CODE), ["qq_coins"]),
        (ProductFilter(brand="valve", category="platform-card", text="序列号"), ["office"]),
        (ProductFilter(brand="valve", category="video-vip"), []),
    ],
    ids=lambda v: repr(v) if isinstance(v, ProductFilter) else "",
)
async def test_a_filter_keeps_the_active_products_matching_every_given_field(
    catalog_db: Database, shelf: Shelf, f: ProductFilter, expected: list[str]
) -> None:
    wanted = [getattr(shelf, name).id for name in expected]

    assert await _page(catalog_db, f) == (wanted, False)
    assert await _count(catalog_db, f) == len(wanted)


async def test_filtered_pages_continue_within_the_filter(
    catalog_db: Database, shelf: Shelf
) -> None:
    tencent = ProductFilter(brand="tencent")

    first = await _page(catalog_db, tencent, limit=2)
    second = await _page(catalog_db, tencent, after_id=first[0][-1], limit=2)

    assert [first, second] == [
        (shelf.ids(shelf.qq_coins, shelf.video_vip), True),
        (shelf.ids(shelf.gift_pack, shelf.discontinued_serial), False),
    ]


async def test_a_product_is_found_by_slug_only_while_active(
    catalog_db: Database, shelf: Shelf
) -> None:
    async with catalog_db.read_sessions() as session:
        found = await catalog.product_by_slug(session, "qq-coins")
        withdrawn = await catalog.product_by_slug(session, "old-vip")
        unknown = await catalog.product_by_slug(session, "no-such-product")

    assert (found.id if found else None, withdrawn, unknown) == (shelf.qq_coins.id, None, None)


async def test_a_products_active_skus_come_cheapest_first(
    catalog_db: Database, shelf: Shelf
) -> None:
    async with catalog_db.read_sessions() as session:
        grouped = await catalog.skus_of_products(
            session, [shelf.qq_coins.id, shelf.discontinued_serial.id, shelf.steam.id]
        )

    assert {product: [s.id for s in skus] for product, skus in grouped.items()} == {
        shelf.qq_coins.id: [shelf.skus[c].id for c in ("QB-10", "QB-30", "QB-100")],
        shelf.steam.id: [shelf.skus["STEAM"].id],
    }


async def test_a_bundle_lists_its_components_with_quantities(
    catalog_db: Database, shelf: Shelf
) -> None:
    pack, txv, qb30 = shelf.skus["PACK"], shelf.skus["TXV"], shelf.skus["QB-30"]

    async with catalog_db.read_sessions() as session:
        grouped = await catalog.bundle_items_of_skus(session, [pack.id, txv.id])

    assert {b: sorted((s.id, q) for s, q in parts) for b, parts in grouped.items()} == {
        pack.id: sorted([(txv.id, 1), (qb30.id, 2)])
    }


async def test_suppliers_of_a_sku_come_in_failover_order(
    catalog_db: Database, shelf: Shelf
) -> None:
    async with catalog_db.sessions() as session, session.begin():
        fast, backup, last_resort = (
            await rows.supplier(session, "快充"),
            await rows.supplier(session, "备用"),
            await rows.supplier(session, "兜底", active=False),
        )
        txv, steam = shelf.skus["TXV"], shelf.skus["STEAM"]
        # Inserted out of order: the priority decides, not the insertion.
        rows.supplies(session, txv, last_resort, priority=3)
        rows.supplies(session, txv, fast, priority=1)
        rows.supplies(session, txv, backup, priority=2)
        rows.supplies(session, steam, backup, priority=1)
        rows.supplies(session, steam, fast, priority=5)

    async with catalog_db.read_sessions() as session:
        grouped = await catalog.suppliers_of_skus(
            session, [txv.id, steam.id, shelf.skus["GAMES"].id]
        )

    assert {sku: [(p, s.name) for p, s in pairs] for sku, pairs in grouped.items()} == {
        txv.id: [(1, "快充"), (2, "备用"), (3, "兜底")],
        steam.id: [(1, "备用"), (5, "快充")],
    }


async def test_rows_by_id_finds_the_known_ids_only(catalog_db: Database, shelf: Shelf) -> None:
    async with catalog_db.read_sessions() as session:
        found = await catalog.rows_by_id(
            session, Product, [shelf.steam.id, 2_000_000_000, shelf.office.id]
        )

    assert {pk: row.name for pk, row in found.items()} == {
        shelf.steam.id: "Steam Wallet",
        shelf.office.id: "Office_2024 序列号",
    }
