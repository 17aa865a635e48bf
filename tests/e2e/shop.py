"""A shop of its own for order tests: a fresh database, migrated, with the demo channels.

Orders consume stock, and the session database holds demo stock that other tests
count. Order tests therefore stock the SKUs they need here, exactly as each test
says, and run the gateway (in process, or as a real server) on this database.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from config import Settings
from domain.access import Role
from domain.catalog import CodeStatus, SkuKind
from gateway import create_app
from models import Allocation, BundleItem, CardCode, Channel, Order, Product, Sku, StockLevel
from schema.relay import encode_id
from services.access.keys import issue_key
from services.core.database import Database
from services.core.migrate import upgrade
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from services.inventory import quotas
from tests.services import catalog_rows as rows
from tests.support import TEST_REDIS_URL, GraphQLClient, fresh_database, new_secret_key

STOCK = """
query Stock($channel: String!, $id: ID!) {
  product(channel: $channel, id: $id) { skus { code stock { available reserved presale } } }
}
"""


@contextlib.asynccontextmanager
async def migrated_database(folder: Path) -> AsyncIterator[str]:
    """A new database (SQLite file or PostgreSQL database), migrated; dropped afterwards.

    Migrations and the PostgreSQL admin statements run their own event loop, so they
    run in a thread beside the test's loop.
    """
    databases = cast(Generator[str, None, None], fresh_database(folder))
    url = await asyncio.to_thread(next, databases)
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await asyncio.to_thread(databases.close)


@dataclass(frozen=True)
class StockedSku:
    pk: int
    code: str

    @property
    def gid(self) -> str:
        return encode_id("Sku", self.pk)


def order_input(
    *lines: tuple[StockedSku, int], channel: str = "web", key: str | None = None, buyer: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A PlaceOrderInput; a fresh idempotency key unless `key` is given."""
    return {
        "channel": channel,
        "idempotencyKey": key or uuid.uuid4().hex,
        "lines": [{"skuId": sku.gid, "quantity": quantity} for sku, quantity in lines],
        "buyer": buyer if buyer is not None else {"phone": "13800138000"},
    }


@dataclass(frozen=True)
class ShopKeys:
    admin: str
    taobao: str  # marketplace partner
    b2b: str  # B2B partner of b2b-demo
    web: str  # storefront key of the public channel web

    def prefix(self, key: str) -> str:
        return key.split("_")[1]


async def issue_keys(db: Database) -> ShopKeys:
    async with db.sessions() as session, session.begin():
        issued = [
            await issue_key(session, role=role, channel=channel, name=f"order tests {channel or 'admin'}")
            for role, channel in (
                (Role.ADMIN, None), (Role.PARTNER, "taobao"), (Role.PARTNER, "b2b-demo"), (Role.STOREFRONT, "web"),
            )
        ]
    return ShopKeys(*(key.plaintext for key in issued))


@dataclass
class Shelf:
    """Writes the stock a test asks for: SKUs of each kind on one active product."""

    db: Database
    product_id: int = 0
    withdrawn_product_id: int = 0

    async def open(self) -> None:
        async with self.db.sessions() as session, session.begin():
            brand = await rows.brand(session, rows.unique("order-brand"))
            category = await rows.category(session, rows.unique("order-category"))
            product = await rows.product(session, brand=brand, category=category, name="下单测试商品")
            withdrawn = await rows.product(session, brand=brand, category=category, name="已下架商品", active=False)
        self.product_id, self.withdrawn_product_id = product.id, withdrawn.id

    async def card_codes(
        self, count: int, *, price_fen: int = 1000, presale_cap: int = 0, product_active: bool = True
    ) -> StockedSku:
        product_id = self.product_id if product_active else self.withdrawn_product_id
        return await self._sku(SkuKind.CARD_CODE, price_fen, presale_cap, codes=count, product_id=product_id)

    async def withdraw(self, sku: StockedSku) -> None:
        async with self.db.sessions() as session, session.begin():
            (await session.get_one(Sku, sku.pk)).active = False

    async def serials(self, count: int, *, uses: int, price_fen: int = 1000) -> StockedSku:
        return await self._sku(SkuKind.SERIAL, price_fen, 0, codes=count, uses=uses)

    async def counter(self, on_hand: int, *, price_fen: int = 1000) -> StockedSku:
        return await self._sku(SkuKind.DIRECT_RECHARGE, price_fen, 0, on_hand=on_hand)

    async def bundle(self, *parts: tuple[StockedSku, int], price_fen: int = 1000) -> StockedSku:
        bundle = await self._sku(SkuKind.BUNDLE, price_fen, 0)
        async with self.db.sessions() as session, session.begin():
            session.add_all(
                BundleItem(bundle_sku_id=bundle.pk, component_sku_id=part.pk, quantity=quantity) for part, quantity in parts
            )
        return bundle

    async def _sku(
        self, kind: SkuKind, price_fen: int, presale_cap: int, *, codes: int = 0, uses: int = 1,
        on_hand: int | None = None, product_id: int | None = None,
    ) -> StockedSku:
        async with self.db.sessions() as session, session.begin():
            product = await session.get_one(Product, product_id or self.product_id)
            sku = await rows.sku(session, product, kind, price_fen=price_fen, presale_cap=presale_cap)
            if codes:
                rows.codes(session, sku, CodeStatus.AVAILABLE, codes, uses=uses)
            if on_hand is not None:
                rows.counter(session, sku, on_hand=on_hand)
        return StockedSku(sku.id, sku.code)

    async def set_quota(self, channel: str, sku: StockedSku, quota: int) -> None:
        async with self.db.sessions() as session, session.begin():
            channel_id = await session.scalar(select(Channel.id).where(Channel.code == channel))
            assert channel_id is not None
            await quotas.set_quota(session, channel_id, sku.pk, quota)


@dataclass
class Ledger:
    """What the database says about stock and orders, read directly."""

    db: Database

    async def codes(self, sku: StockedSku) -> dict[str, int]:
        """Codes of a SKU by status, e.g. {"AVAILABLE": 3, "RESERVED": 1}."""
        async with self.db.sessions() as session:
            found = await session.execute(
                select(CardCode.status, func.count()).where(CardCode.sku_id == sku.pk).group_by(CardCode.status)
            )
            return {status.value: count for status, count in found}

    async def uses_left(self, sku: StockedSku) -> list[int]:
        async with self.db.sessions() as session:
            return list(await session.scalars(select(CardCode.uses_left).where(CardCode.sku_id == sku.pk).order_by(CardCode.id)))

    async def counter(self, sku: StockedSku) -> tuple[int, int]:
        """(on hand, reserved) of a top-up SKU."""
        async with self.db.sessions() as session:
            on_hand, reserved = (await session.execute(
                select(func.sum(StockLevel.on_hand), func.sum(StockLevel.reserved)).where(StockLevel.sku_id == sku.pk)
            )).one()
            return int(on_hand), int(reserved)

    async def presale_used(self, sku: StockedSku) -> int:
        async with self.db.sessions() as session:
            return (await session.get_one(Sku, sku.pk)).presale_used

    async def allocations(self, sku: StockedSku) -> Counter[tuple[str, str]]:
        """Units allocated for a SKU by (source, state)."""
        async with self.db.sessions() as session:
            found = await session.execute(
                select(Allocation.source, Allocation.state, func.sum(Allocation.units))
                .where(Allocation.sku_id == sku.pk)
                .group_by(Allocation.source, Allocation.state)
            )
            return Counter({(source, state): int(units) for source, state, units in found})

    async def order_count(self) -> int:
        async with self.db.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Order)) or 0)


@dataclass
class Shop:
    """The gateway on a database of its own, and what a test needs to drive and inspect it."""

    settings: Settings
    db: Database
    keys: ShopKeys
    shelf: Shelf
    ledger: Ledger
    client: GraphQLClient
    extra: dict[str, Any] = field(default_factory=dict)  # what a module's fixture stocked, by name

    async def gql(self, query: str, variables: dict[str, Any] | None = None, *, key: str | None = None) -> dict[str, Any]:
        return await self.client(query, variables, key=key)

    async def stock(self, sku: StockedSku, channel: str = "web", *, key: str | None = None) -> dict[str, int]:
        """The SKU's stock as a buyer of `channel` sees it in the catalog."""
        answer = await self.gql(STOCK, {"channel": channel, "id": encode_id("Product", self.shelf.product_id)}, key=key)
        return next(s["stock"] for s in answer["data"]["product"]["skus"] if s["code"] == sku.code)


def shop_settings(url: str, **overrides: Any) -> Settings:
    settings = Settings(
        database_url=url,
        redis_url=TEST_REDIS_URL,
        secret_key=new_secret_key(),
        response_cache=False,
        rate_limits=False,
        hold_limit=0,  # a rush of buyers from one address; tests of holds set caps of their own
        hold_limit_per_ip=0,
        broker_prefix=f"quanyi-orders-{uuid.uuid4().hex[:8]}:",
    )
    return replace(settings, **overrides)


async def stock_shop(db: Database, settings: Settings) -> tuple[ShopKeys, Shelf]:
    """The demo channels and catalog, keys of each kind, and an empty shelf for test SKUs."""
    await seed_demo(db, SecretBox(settings.secret_key))
    keys = await issue_keys(db)
    shelf = Shelf(db)
    await shelf.open()
    return keys, shelf


@contextlib.asynccontextmanager
async def open_shop(folder: Path, **overrides: Any) -> AsyncIterator[Shop]:
    """The gateway, in process, on a fresh database; `overrides` are Settings fields."""
    async with migrated_database(folder) as url:
        settings = shop_settings(url, **overrides)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            app = create_app(settings)
            async with LifespanManager(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as http:
                    yield Shop(settings, db, keys, shelf, Ledger(db), GraphQLClient(http))
        finally:
            await db.dispose()
