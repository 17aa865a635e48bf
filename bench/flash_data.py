"""The flash sale's stock, and what the database says was sold once the sale is over.

Three CARD_CODE SKUs of one product on top of the demo data, each with a code pool of
its own: the hot SKU the gateway sells, a copy for the raw asyncpg floor (so both paths
sell out the same number of codes), and a small one that warms the paths up first. With
`counter`, the three are DIRECT_RECHARGE SKUs instead, each with as many units of counter
stock as the pool would have had codes, spread over `slots` stock_level rows (slots=1: the
one row that every order updates).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import asyncpg
from sqlalchemy import insert, select

from config import Settings
from domain.catalog import CodeStatus, SkuKind
from domain.limits import Period
from models import (
    Brand,
    StockLevel,
    CardCode,
    Category,
    Channel,
    ChannelQuota,
    Listing,
    Product,
    PurchaseLimit,
    Sku,
    SkuSupplier,
    Supplier,
)
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.inventory.quota_slots import laid_out as quota_laid_out
from services.inventory.slots import laid_out

CHANNEL = "web"
PRICE_FEN = 9_900
BATCH = 1_000  # codes per INSERT: few round trips, well under PostgreSQL's 65,535 parameters


@dataclass(frozen=True)
class Shelf:
    channel_id: int
    gateway_sku: int  # sold through placeOrder
    floor_sku: int  # sold by the raw asyncpg floor
    warmup_sku: int  # a little of each path's warm-up, so neither starts cold
    price_fen: int = PRICE_FEN


async def stock_flash_sale(
    settings: Settings, codes: int, warmup_codes: int, *, quota: bool = True, counter: bool = False,
    slots: int = 1,
) -> Shelf:
    """Adds the sale's product, its SKUs and their code pools; returns their ids."""
    db = Database.connect(settings)
    box = SecretBox(settings.secret_key)
    try:
        async with db.sessions() as session, session.begin():
            channel_id = await session.scalar(select(Channel.id).where(Channel.code == CHANNEL))
            brand = await session.scalar(select(Brand).where(Brand.code == "tencent"))
            category = await session.scalar(
                select(Category).where(Category.code == "platform-card")
            )
            suppliers = list(await session.scalars(select(Supplier).order_by(Supplier.id)))
            if channel_id is None or brand is None or category is None:
                raise RuntimeError(
                    "the demo data is missing: channel web, brand tencent, category platform-card"
                )
            product = Product(
                slug="flash-sale-q-coins",
                name="Q币卡限时秒杀",
                description="限时秒杀：Q币 100 元卡密。",
                brand_id=brand.id,
                category_id=category.id,
            )
            session.add(product)
            await session.flush()
            session.add(Listing(channel_id=channel_id, product_id=product.id, position=1_000))
            pools = {
                "FLASH-QB-100": codes,
                "FLASH-QB-100-FLOOR": codes,
                "FLASH-QB-100-WARMUP": warmup_codes,
            }
            ids: dict[str, int] = {}
            for code, size in pools.items():
                sku = Sku(
                    product_id=product.id,
                    code=code,
                    name="Q币 100 元（秒杀）",
                    kind=SkuKind.DIRECT_RECHARGE if counter else SkuKind.CARD_CODE,
                    face_value_fen=10_000,
                    supplier_cost_fen=9_500,
                    base_price_fen=PRICE_FEN,
                )
                session.add(sku)
                await session.flush()
                for priority, supplier in enumerate(suppliers, start=1):
                    session.add(
                        SkuSupplier(sku_id=sku.id, supplier_id=supplier.id, priority=priority)
                    )
                ids[code] = sku.id
                if counter:
                    # Spread over `slots` slots, as setTopUpStock spreads it.
                    session.add_all(StockLevel(**row) for row in laid_out(sku.id, size, slots))
                    continue
                context = str(sku.id).encode()
                rows = []
                for n in range(size):
                    secret = "-".join(secrets.token_hex(2).upper() for _ in range(4))
                    rows.append(
                        {
                            "sku_id": sku.id,
                            "secret_ciphertext": box.seal(secret, context=context),
                            "secret_digest": box.digest(secret),
                            "number": f"{code}-{n + 1:06d}",
                            "status": CodeStatus.AVAILABLE,
                            "uses_left": 1,
                        }
                    )
                for start in range(0, len(rows), BATCH):
                    await session.execute(insert(CardCode), rows[start : start + BATCH])
            # The hot SKU sells as a real sale would: one per buyer a day (限购), from a channel
            # quota twice its pool, so every order takes its buyer's count and the quota. The
            # warm-up SKU is limited the same way, so the warm-up runs the path the sale takes.
            for sku_id, pool in ((ids["FLASH-QB-100"], codes), (ids["FLASH-QB-100-WARMUP"], warmup_codes)):
                session.add(
                    PurchaseLimit(
                        channel_id=channel_id, sku_id=sku_id, per_order=1, per_buyer=1, period=Period.DAY,
                        updated_by="bench",
                    )
                )
                if quota:  # --no-quota measures what the quota costs (docs/benchmarks.md)
                    # Spread over slots as setChannelQuota spreads it (QUANYI_STOCK_SLOTS).
                    await session.execute(
                        insert(ChannelQuota), quota_laid_out(channel_id, sku_id, 2 * pool, settings.stock_slots)
                    )
    finally:
        await db.dispose()
    return Shelf(
        channel_id=channel_id,
        gateway_sku=ids["FLASH-QB-100"],
        floor_sku=ids["FLASH-QB-100-FLOOR"],
        warmup_sku=ids["FLASH-QB-100-WARMUP"],
    )


@dataclass(frozen=True)
class Audit:
    """One SKU's pool after the sale, read from the database."""

    codes: int
    reserved: int  # codes RESERVED
    available: int  # codes still AVAILABLE
    held_twice: int  # codes held by more than one order line
    orders: int  # orders with a line of this SKU
    overdrawn: int  # lines holding more codes than they asked for
    unrecorded: int  # RESERVED codes without the allocation row that says which line holds them

    def oversold(self, placed: int) -> int:
        """Codes promised twice, plus orders told "placed" that hold no code of their own."""
        return self.held_twice + max(0, placed - self.reserved)


AUDIT = """
SELECT
  (SELECT count(*) FROM card_code WHERE sku_id = $1) AS codes,
  (SELECT count(*) FROM card_code WHERE sku_id = $1 AND status = 'RESERVED') AS reserved,
  (SELECT count(*) FROM card_code WHERE sku_id = $1 AND status = 'AVAILABLE') AS available,
  (SELECT count(*) FROM (
     SELECT code_id FROM allocation
     WHERE sku_id = $1 AND code_id IS NOT NULL AND state <> 'RELEASED'
     GROUP BY code_id HAVING count(DISTINCT line_id) > 1) AS shared) AS held_twice,
  (SELECT count(DISTINCT l.order_id) FROM order_line l WHERE l.sku_id = $1) AS orders,
  (SELECT count(*) FROM (
     SELECT l.id FROM order_line l
     JOIN allocation a ON a.line_id = l.id AND a.state <> 'RELEASED' AND a.code_id IS NOT NULL
     WHERE l.sku_id = $1
     GROUP BY l.id, l.quantity HAVING sum(a.units) > l.quantity) AS greedy) AS overdrawn,
  (SELECT count(*) FROM card_code c
   WHERE c.sku_id = $1 AND c.status = 'RESERVED' AND NOT EXISTS (
     SELECT 1 FROM allocation a
     WHERE a.code_id = c.id AND a.line_id = c.order_line_id AND a.state = 'HELD')) AS unrecorded
"""


# The same figures for a counter SKU: its units stand for codes ("codes" is what it had on
# hand, summed over its slots); a unit is held twice when a slot holds fewer than the
# allocations naming it say.
COUNTER_AUDIT = """
SELECT
  (SELECT sum(on_hand) FROM stock_level WHERE sku_id = $1) AS codes,
  (SELECT sum(reserved) FROM stock_level WHERE sku_id = $1) AS reserved,
  (SELECT sum(on_hand - reserved) FROM stock_level WHERE sku_id = $1) AS available,
  (SELECT coalesce(sum(GREATEST(0, held.units - s.reserved)), 0) FROM stock_level s
   JOIN (SELECT slot, sum(units) AS units FROM allocation WHERE sku_id = $1 AND state = 'HELD' GROUP BY slot) AS held
     ON held.slot = s.slot
   WHERE s.sku_id = $1) AS held_twice,
  (SELECT count(DISTINCT l.order_id) FROM order_line l WHERE l.sku_id = $1) AS orders,
  (SELECT count(*) FROM (
     SELECT l.id FROM order_line l
     JOIN allocation a ON a.line_id = l.id AND a.state <> 'RELEASED'
     WHERE l.sku_id = $1
     GROUP BY l.id, l.quantity HAVING sum(a.units) > l.quantity) AS greedy) AS overdrawn,
  GREATEST(0, (SELECT sum(reserved) FROM stock_level WHERE sku_id = $1)
              - (SELECT coalesce(sum(units), 0) FROM allocation WHERE sku_id = $1 AND state = 'HELD')) AS unrecorded
"""


def asyncpg_dsn(database_url: str) -> str:
    """The gateway's SQLAlchemy URL as a plain libpq DSN for asyncpg."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def audit(
    database_url: str, sku_ids: list[int], *, counter: bool = False
) -> tuple[dict[int, Audit], dict[str, str]]:
    """Each SKU's audit, and the server's version and durability settings."""
    connection = await asyncpg.connect(asyncpg_dsn(database_url))
    query = COUNTER_AUDIT if counter else AUDIT
    try:
        audits = {
            sku_id: Audit(**dict(await connection.fetchrow(query, sku_id))) for sku_id in sku_ids
        }
        server = {
            name: await connection.fetchval(f"SHOW {name}")
            for name in ("server_version", "fsync", "synchronous_commit")
        }
    finally:
        await connection.close()
    return audits, server
