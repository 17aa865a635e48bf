"""Catalog types: Product, Sku, Brand, Category, Supplier, Stock."""

from __future__ import annotations

import asyncio
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from domain import catalog as domain
from domain.access import may_read_channel_private, may_read_costs
from domain.catalog import StockFigures
from domain.recharge_accounts import AccountFormat, parse_formats
from models import catalog as rows
from schema.channel import ChannelScope
from schema.context import Info
from schema.draws import BlindBox, blind_box
from schema.limits import PurchaseLimit
from schema.money import Money
from schema.pricing import ChannelQuota, PriceControl, PriceTier
from schema.relay import Node, encode_id
from services.inventory.quotas import Quota
from services.pricing.prices import SkuPricing

SkuKind = strawberry.enum(domain.SkuKind, description="What a SKU delivers and how.")
RechargeAccountFormat = strawberry.enum(AccountFormat, description="An account a top-up accepts.")


@strawberry.type(description="Units a channel can sell now, held by open orders, and open to presale.")
class Stock:
    available: int
    reserved: int
    presale: int

    @classmethod
    def of(cls, figures: StockFigures) -> Stock:
        return cls(available=figures.available, reserved=figures.reserved, presale=figures.presale)


@strawberry.type
class Brand(Node):
    code: str
    name: str
    version: int = strawberry.field(description="Name it when updating: a stale version is a CONFLICT.")
    archived_at: datetime | None

    @classmethod
    def from_model(cls, row: rows.Brand) -> Brand:
        return cls(id=encode_id("Brand", row.id), code=row.code, name=row.name, version=row.version,
                   archived_at=row.archived_at)


@strawberry.type
class Category(Node):
    code: str
    name: str
    version: int
    archived_at: datetime | None

    @classmethod
    def from_model(cls, row: rows.Category) -> Category:
        return cls(id=encode_id("Category", row.id), code=row.code, name=row.name, version=row.version,
                   archived_at=row.archived_at)


@strawberry.type(description="An upstream provider that fulfils SKUs; operators only. Its secret is never shown.")
class Supplier(Node):
    code: str
    name: str
    active: bool
    version: int
    archived_at: datetime | None
    adapter: str
    base_url: str | None
    timeout_seconds: float
    secret_set: bool = strawberry.field(description="Whether a signing secret is stored (sealed).")
    _row: strawberry.Private[rows.Supplier]

    @classmethod
    def from_model(cls, row: rows.Supplier) -> Supplier:
        return cls(
            id=encode_id("Supplier", row.id), code=row.code, name=row.name, active=row.active, version=row.version,
            archived_at=row.archived_at, adapter=row.adapter, base_url=row.base_url,
            timeout_seconds=row.timeout_seconds, secret_set=row.secret_ciphertext is not None, _row=row,
        )

    @strawberry.field(
        description="Why this gateway cannot send top-ups to it: no base URL, no signing secret, an adapter "
        "kind it lacks, archived or inactive. Null when it can."
    )
    async def connection_problem(self, info: Info) -> str | None:
        problem = info.context.supplier_problem
        return await problem(self._row) if problem is not None else None

    @strawberry.field(description="Whether top-ups can be sent to it now.")
    async def usable(self, info: Info) -> bool:
        return await self.connection_problem(info) is None


@strawberry.type(description="A supplier of a SKU: its place in the failover order (1 first), its own product code and cost.")
class SkuSupplier:
    priority: int
    supplier: Supplier
    product_code: str | None = strawberry.field(description="What the supplier calls the product; the SKU code when null.")
    cost: Money | None = strawberry.field(description="What it charges per unit; the SKU's supplier cost when null.")


@strawberry.type(description="One SKU inside a bundle and how many of it one bundle holds.")
class BundleComponent:
    quantity: int
    sku: Sku


@strawberry.type
class Sku(Node):
    code: str
    name: str
    kind: SkuKind  # type: ignore[valid-type]
    face_value: Money
    price: Money = strawberry.field(description="The price of one unit for the query's channel, now.")
    price_tiers: list[PriceTier] = strawberry.field(description="The channel's B2B quantity tiers.")
    stock: Stock = strawberry.field(description="Stock for the query's channel (its quotas applied).")
    currency: str
    recharge_account_formats: list[RechargeAccountFormat] = strawberry.field(  # type: ignore[valid-type]
        description="The accounts a top-up accepts at placeOrder; empty: any account.")
    serial_uses: int = strawberry.field(description="Uses of each serial imported without a count (SERIAL).")
    version: int = strawberry.field(description="Name it when updating: a stale version is a CONFLICT.")
    archived_at: datetime | None
    _row: strawberry.Private[rows.Sku]
    _scope: strawberry.Private[ChannelScope]
    _quota: strawberry.Private[Quota | None]

    @classmethod
    def from_model(
        cls, row: rows.Sku, stock: StockFigures, prices: SkuPricing, quota: Quota | None,
        scope: ChannelScope, now: datetime,
    ) -> Sku:
        return cls(
            id=encode_id("Sku", row.id),
            code=row.code,
            name=row.name,
            kind=row.kind,
            face_value=Money.fen(row.face_value_fen, row.currency),
            price=Money.of(prices.at(now).unit),
            price_tiers=[
                PriceTier(min_quantity=t.min_quantity, price=Money.of(prices.at(now, t.min_quantity).unit))
                for t in prices.tiers
            ],
            stock=Stock.of(stock),
            currency=row.currency,
            recharge_account_formats=list(parse_formats(row.account_formats)),
            serial_uses=row.serial_uses,
            version=row.version,
            archived_at=row.archived_at,
            _row=row,
            _scope=scope,
            _quota=quota,
        )

    @strawberry.field
    async def product(self, info: Info) -> Product | None:
        row = await info.context.loaders.product_by_id.load(self._row.product_id)
        return Product.from_model(row, self._scope) if row else None

    @strawberry.field(description="Suppliers in failover order; operators only.")
    async def suppliers(self, info: Info) -> list[SkuSupplier] | None:
        if not may_read_costs(info.context.principal):
            return None
        pairs = await info.context.loaders.supplier_links_by_sku.load(self._row.id)
        currency = self._row.currency
        return [
            SkuSupplier(priority=link.priority, supplier=Supplier.from_model(supplier), product_code=link.product_code,
                        cost=Money.fen(link.cost_fen, currency) if link.cost_fen is not None else None)
            for link, supplier in pairs
        ]

    @strawberry.field(description="The price before channel prices apply; operators only.")
    def base_price(self, info: Info) -> Money | None:
        return Money.fen(self._row.base_price_fen, self._row.currency) if info.context.principal.is_admin else None

    @strawberry.field(description="Orders accepted before codes arrive, at most; operators only.")
    def presale_cap(self, info: Info) -> int | None:
        return self._row.presale_cap if info.context.principal.is_admin else None

    @strawberry.field(description="Supplier cost per unit; operators only.")
    def supplier_cost(self, info: Info) -> Money | None:
        if not may_read_costs(info.context.principal):
            return None
        return Money.fen(self._row.supplier_cost_fen, self._row.currency)

    @strawberry.field(description="Price floor and ceiling (控价); operators only.")
    def price_control(self, info: Info) -> PriceControl | None:
        if not info.context.principal.is_admin:
            return None
        currency = self._row.currency
        floor, ceiling = self._row.price_floor_fen, self._row.price_ceiling_fen
        return PriceControl(
            floor=Money.fen(floor, currency) if floor is not None else None,
            ceiling=Money.fen(ceiling, currency) if ceiling is not None else None,
        )

    @strawberry.field(description="The channel's quota on this SKU; operators and the channel's partner.")
    def channel_quota(self, info: Info) -> ChannelQuota | None:
        code = self._scope.code
        if self._quota is None or code is None:
            return None
        if not may_read_channel_private(info.context.principal, code):
            return None
        quota = self._quota
        return ChannelQuota(channel=code, quota=quota.quota, used=quota.used, remaining=quota.remaining)

    @strawberry.field(description="The channel's purchase limit (限购) on this SKU; null: none.")
    async def purchase_limit(self, info: Info) -> PurchaseLimit | None:
        channel_id, code = self._scope.channel_id, self._scope.code
        if channel_id is None or code is None:
            return None
        limit = await info.context.loaders.purchase_limit_by_channel_sku.load((channel_id, self._row.id))
        return PurchaseLimit.of(limit, code) if limit is not None else None

    @strawberry.field(description="A BLIND_BOX's published items, weights, odds and seed commitment; null for other kinds.")
    async def blind_box(self, info: Info) -> BlindBox | None:
        if self._row.kind is not domain.SkuKind.BLIND_BOX:
            return None
        return await blind_box(info, self._row.id)

    @strawberry.field(description="What one unit of a BUNDLE contains; empty for other kinds.")
    async def components(self, info: Info) -> list[BundleComponent]:
        if self._row.kind is not domain.SkuKind.BUNDLE:
            return []
        parts = await info.context.loaders.components_by_bundle.load(self._row.id)
        skus = await load_skus(info, [sku for sku, _ in parts], self._scope)
        return [BundleComponent(quantity=q, sku=sku) for (_, q), sku in zip(parts, skus, strict=True)]


async def load_skus(info: Info, skus: list[rows.Sku], scope: ChannelScope) -> list[Sku]:
    """SKU types for a list of rows, with stock, prices and quotas fetched once per list.

    Loading per list rather than per field keeps `price` and `stock` plain attributes:
    a page of fifty products costs the same few statements as a page of five.
    """
    loaders, ids = info.context.loaders, [sku.id for sku in skus]
    channel_id = scope.channel_id
    stocks, prices, quotas = await asyncio.gather(
        loaders.stock_by_channel_sku.load_many([(channel_id, i) for i in ids])
        if channel_id is not None
        else loaders.stock_by_sku.load_many(ids),
        loaders.pricing_by_channel_sku.load_many([(channel_id, i) for i in ids]),
        loaders.quota_by_channel_sku.load_many([(channel_id, i) for i in ids])
        if channel_id is not None
        else _nothing(len(ids)),
    )
    now = info.context.now
    return [
        Sku.from_model(sku, stock, price, quota, scope, now)
        for sku, stock, price, quota in zip(skus, stocks, prices, quotas, strict=True)
    ]


async def _nothing(count: int) -> list[None]:
    return [None] * count


@strawberry.type(description="Where a product is on sale: the channel and its place in the channel's catalog.")
class ProductListing:
    channel: str
    position: int


@strawberry.type
class Product(Node):
    slug: str
    name: str
    description: str
    image_urls: list[str] = strawberry.field(description="Pictures, absolute https URLs, in display order.")
    attributes: JSON = strawberry.field(description="Free attributes: name -> text.")
    version: int = strawberry.field(description="Name it when updating: a stale version is a CONFLICT.")
    archived_at: datetime | None
    _row: strawberry.Private[rows.Product]
    _scope: strawberry.Private[ChannelScope]
    # Filled when the whole page was loaded at once (see `load_products`).
    _brand: strawberry.Private[Brand | None] = None
    _category: strawberry.Private[Category | None] = None
    _skus: strawberry.Private[list[Sku] | None] = None

    @classmethod
    def from_model(cls, row: rows.Product, scope: ChannelScope) -> Product:
        return cls(
            id=encode_id("Product", row.id),
            slug=row.slug,
            name=row.name,
            description=row.description,
            image_urls=list(row.image_urls or []),
            attributes=dict(row.attributes or {}),
            version=row.version,
            archived_at=row.archived_at,
            _row=row,
            _scope=scope,
        )

    @strawberry.field(description="The channels it is listed on, with its position there; operators only.")
    async def listings(self, info: Info) -> list[ProductListing] | None:
        if not info.context.principal.is_admin:
            return None
        found = await info.context.loaders.listings_by_product.load(self._row.id)
        return [ProductListing(channel=channel.code, position=position) for channel, position in found]

    # These resolvers are plain functions: a prefetched value is returned as is, which
    # costs graphql-core nothing; otherwise they hand back an awaitable that loads it.
    @strawberry.field
    def brand(self, info: Info) -> Brand:
        return self._brand if self._brand is not None else self._load_brand(info)  # type: ignore[return-value]

    @strawberry.field
    def category(self, info: Info) -> Category:
        return self._category if self._category is not None else self._load_category(info)  # type: ignore[return-value]

    @strawberry.field(description="Active SKUs, cheapest first, priced for the query's channel.")
    def skus(self, info: Info) -> list[Sku]:
        return self._skus if self._skus is not None else self._load_skus(info)  # type: ignore[return-value]

    async def _load_brand(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.loaders.brand_by_id.load(self._row.brand_id))

    async def _load_category(self, info: Info) -> Category:
        return Category.from_model(await info.context.loaders.category_by_id.load(self._row.category_id))

    async def _load_skus(self, info: Info) -> list[Sku]:
        skus = await info.context.loaders.skus_by_product.load(self._row.id)
        return await load_skus(info, skus, self._scope)


async def load_products(
    info: Info, rows_: list[rows.Product], scope: ChannelScope, *, with_skus: bool
) -> list[Product]:
    """A page of products with brand, category and (when asked for) SKUs loaded per level.

    One batched load per relation for the whole page, instead of one resolver and one
    loader call per product: the page costs the same statements and far less Python.
    """
    loaders = info.context.loaders
    brands, categories = await asyncio.gather(
        loaders.brand_by_id.load_many([row.brand_id for row in rows_]),
        loaders.category_by_id.load_many([row.category_id for row in rows_]),
    )
    products = [Product.from_model(row, scope) for row in rows_]
    for product, brand, category in zip(products, brands, categories, strict=True):
        product._brand = Brand.from_model(brand)
        product._category = Category.from_model(category)
    if with_skus:
        per_product = await loaders.skus_by_product.load_many([row.id for row in rows_])
        built = iter(await load_skus(info, [sku for skus in per_product for sku in skus], scope))
        for product, skus in zip(products, per_product, strict=True):
            product._skus = [next(built) for _ in skus]
    return products
