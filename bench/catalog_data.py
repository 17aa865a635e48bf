"""More catalog for the benchmark's own database, on top of the demo data.

The demo has 9 products with 21 SKUs (about 4 KB of catalog answer); a storefront page
is 20 products of about 3 SKUs each (about 10 KB). These products fill the page, with
code pools and counters like the demo's so every stock figure is computed for real.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config import Settings
from domain.catalog import SkuKind
from models import Brand, CardCode, Category, Channel, Listing, Product, Sku, SkuSupplier, StockLevel, Supplier
from services.core.database import Database
from services.core.secret_box import SecretBox

BRANDS = [("bilibili", "哔哩哔哩"), ("youku", "优酷"), ("mgtv", "芒果TV"), ("jd", "京东")]

CARD, TOPUP = SkuKind.CARD_CODE, SkuKind.DIRECT_RECHARGE

# (slug, name, brand, category, SKUs as (code, name, kind, price in fen))
# fmt: off
PRODUCTS: list[tuple[str, str, str, str, list[tuple[str, str, SkuKind, int]]]] = [
    ("bilibili-vip", "哔哩哔哩大会员", "bilibili", "video-vip", [
        ("BILI-MONTH", "大会员月卡直充", TOPUP, 2500), ("BILI-SEASON", "大会员季卡直充", TOPUP, 6800),
        ("BILI-YEAR", "大会员年卡直充", TOPUP, 16800), ("BILI-YEAR-CODE", "大会员年卡卡密", CARD, 16500),
    ]),
    ("youku-vip", "优酷 VIP 会员", "youku", "video-vip", [
        ("YK-MONTH", "优酷月卡直充", TOPUP, 2000), ("YK-SEASON", "优酷季卡直充", TOPUP, 5800),
        ("YK-YEAR", "优酷年卡直充", TOPUP, 19800),
    ]),
    ("mgtv-vip", "芒果TV 会员", "mgtv", "video-vip", [
        ("MG-MONTH", "芒果TV月卡直充", TOPUP, 1900), ("MG-SEASON", "芒果TV季卡直充", TOPUP, 5500),
        ("MG-YEAR", "芒果TV年卡直充", TOPUP, 17800),
    ]),
    ("jd-e-card", "京东 E 卡", "jd", "platform-card", [
        ("JDE-50", "京东 E 卡 50 元", CARD, 4950), ("JDE-100", "京东 E 卡 100 元", CARD, 9900),
        ("JDE-200", "京东 E 卡 200 元", CARD, 19800), ("JDE-500", "京东 E 卡 500 元", CARD, 49500),
    ]),
    ("jd-plus", "京东 PLUS 会员", "jd", "video-vip", [
        ("JDPLUS-MONTH", "PLUS 月卡直充", TOPUP, 1500), ("JDPLUS-YEAR", "PLUS 年卡直充", TOPUP, 14900),
        ("JDPLUS-YEAR-CODE", "PLUS 年卡卡密", CARD, 14500),
    ]),
    ("honor-of-kings", "王者荣耀点券", "tencent", "game-card", [
        ("HOK-60", "60 点券直充", TOPUP, 600), ("HOK-300", "300 点券直充", TOPUP, 3000),
        ("HOK-680", "680 点券直充", TOPUP, 6800), ("HOK-1280", "1280 点券直充", TOPUP, 12800),
    ]),
    ("qq-music", "QQ 音乐绿钻", "tencent", "video-vip", [
        ("QQM-MONTH", "绿钻月卡直充", TOPUP, 1500), ("QQM-SEASON", "绿钻季卡直充", TOPUP, 4500),
        ("QQM-YEAR", "绿钻年卡直充", TOPUP, 15800),
    ]),
    ("eggy-party", "蛋仔派对蛋币", "netease", "game-card", [
        ("EGGY-60", "60 蛋币直充", TOPUP, 600), ("EGGY-300", "300 蛋币直充", TOPUP, 3000),
        ("EGGY-CARD-30", "蛋仔 30 元点卡", CARD, 2950),
    ]),
    ("star-rail", "崩坏：星穹铁道古老梦华", "mihoyo", "game-card", [
        ("HSR-60", "60 古老梦华直充", TOPUP, 600), ("HSR-330", "300+30 古老梦华直充", TOPUP, 3000),
        ("HSR-1090", "980+110 古老梦华直充", TOPUP, 9800), ("HSR-PASS", "列车补给凭证", TOPUP, 3000),
    ]),
    ("steam-gift-card", "Steam 礼品卡", "steam", "platform-card", [
        ("STEAM-GIFT-20", "Steam 礼品卡 20 元", CARD, 1990), ("STEAM-GIFT-200", "Steam 礼品卡 200 元", CARD, 19900),
        ("STEAM-GIFT-500", "Steam 礼品卡 500 元", CARD, 49800),
    ]),
    ("iqiyi-kids", "爱奇艺奇巴布会员", "iqiyi", "video-vip", [
        ("IQYK-MONTH", "奇巴布月卡直充", TOPUP, 1800), ("IQYK-YEAR", "奇巴布年卡直充", TOPUP, 16800),
        ("IQYK-MONTH-CODE", "奇巴布月卡卡密", CARD, 1750), ("IQYK-SEASON", "奇巴布季卡直充", TOPUP, 4800),
    ]),
]
# fmt: on

CODES_PER_SKU = 12


async def fill_catalog(settings: Settings) -> int:
    """Adds the products above to a database that has the demo data; returns how many SKUs."""
    db = Database.connect(settings)
    box = SecretBox(settings.secret_key)
    added = 0
    try:
        async with db.sessions() as session, session.begin():
            brands = {b.code: b for b in await session.scalars(select(Brand))}
            for code, name in BRANDS:
                brands[code] = Brand(code=code, name=name)
                session.add(brands[code])
            categories = {c.code: c for c in await session.scalars(select(Category))}
            suppliers = list(await session.scalars(select(Supplier).order_by(Supplier.id)))
            channels = list(await session.scalars(select(Channel.id)))
            await session.flush()
            for position, (slug, name, brand, category, skus) in enumerate(PRODUCTS, start=100):
                product = Product(
                    slug=slug,
                    name=name,
                    description=f"{name}，官方授权。",
                    brand_id=brands[brand].id,
                    category_id=categories[category].id,
                )
                session.add(product)
                await session.flush()
                # On sale on every channel, after the demo's own products.
                session.add_all(Listing(channel_id=c, product_id=product.id, position=position) for c in channels)
                for code, sku_name, kind, price in skus:
                    sku = Sku(
                        product_id=product.id,
                        code=code,
                        name=sku_name,
                        kind=kind,
                        face_value_fen=price,
                        supplier_cost_fen=price * 9 // 10,
                        base_price_fen=price,
                    )
                    session.add(sku)
                    await session.flush()
                    _stock(session, box, sku)
                    for priority, supplier in enumerate(suppliers, start=1):
                        session.add(
                            SkuSupplier(sku_id=sku.id, supplier_id=supplier.id, priority=priority)
                        )
                    added += 1
    finally:
        await db.dispose()
    return added


def _stock(session: AsyncSession, box: SecretBox, sku: Sku) -> None:
    if sku.kind is SkuKind.DIRECT_RECHARGE:
        session.add(StockLevel(sku_id=sku.id, on_hand=100 + sku.id * 7 % 400, reserved=sku.id % 5))
        return
    context = str(sku.id).encode()
    for n in range(CODES_PER_SKU):
        secret = secrets.token_hex(8).upper()
        session.add(
            CardCode(
                sku_id=sku.id,
                secret_ciphertext=box.seal(secret, context=context),
                secret_digest=box.digest(secret),
                number=f"{sku.code}-{n + 1:06d}",
            )
        )
