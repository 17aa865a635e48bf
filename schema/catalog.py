"""Catalog types: Product, Sku, Brand, Category, Supplier, Stock."""

from __future__ import annotations

import strawberry

from domain import catalog as domain
from domain.catalog import StockFigures
from models import catalog as rows
from schema.channel import ChannelScope
from schema.context import Info
from schema.money import Money
from schema.relay import Node, encode_id

SkuKind = strawberry.enum(domain.SkuKind, description="What a SKU delivers and how.")


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

    @classmethod
    def from_model(cls, row: rows.Brand) -> Brand:
        return cls(id=encode_id("Brand", row.id), code=row.code, name=row.name)


@strawberry.type
class Category(Node):
    code: str
    name: str

    @classmethod
    def from_model(cls, row: rows.Category) -> Category:
        return cls(id=encode_id("Category", row.id), code=row.code, name=row.name)


@strawberry.type(description="An upstream provider that fulfils SKUs.")
class Supplier(Node):
    code: str
    name: str

    @classmethod
    def from_model(cls, row: rows.Supplier) -> Supplier:
        return cls(id=encode_id("Supplier", row.id), code=row.code, name=row.name)


@strawberry.type(description="A supplier of a SKU and its place in the failover order (1 first).")
class SkuSupplier:
    priority: int
    supplier: Supplier


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
    price: Money = strawberry.field(description="The price for the query's channel.")
    stock: Stock = strawberry.field(description="Stock for the query's channel.")
    _row: strawberry.Private[rows.Sku]
    _scope: strawberry.Private[ChannelScope]

    @classmethod
    def from_model(cls, row: rows.Sku, stock: StockFigures, scope: ChannelScope) -> Sku:
        return cls(
            id=encode_id("Sku", row.id),
            code=row.code,
            name=row.name,
            kind=row.kind,
            face_value=Money.fen(row.face_value_fen, row.currency),
            price=Money.fen(row.base_price_fen, row.currency),
            stock=Stock.of(stock),
            _row=row,
            _scope=scope,
        )

    @strawberry.field
    async def product(self, info: Info) -> Product | None:
        row = await info.context.loaders.product_by_id.load(self._row.product_id)
        return Product.from_model(row, self._scope) if row else None

    @strawberry.field(description="Suppliers in failover order; operators only.")
    async def suppliers(self, info: Info) -> list[SkuSupplier] | None:
        if not info.context.principal.is_admin:
            return None
        pairs = await info.context.loaders.suppliers_by_sku.load(self._row.id)
        return [SkuSupplier(priority=p, supplier=Supplier.from_model(s)) for p, s in pairs]

    @strawberry.field(description="Supplier cost per unit; operators only.")
    def supplier_cost(self, info: Info) -> Money | None:
        if not info.context.principal.is_admin:
            return None
        return Money.fen(self._row.supplier_cost_fen, self._row.currency)

    @strawberry.field(description="What one unit of a BUNDLE contains; empty for other kinds.")
    async def components(self, info: Info) -> list[BundleComponent]:
        if self._row.kind is not domain.SkuKind.BUNDLE:
            return []
        loaders = info.context.loaders
        parts = await loaders.components_by_bundle.load(self._row.id)
        stocks = await loaders.stock_by_sku.load_many([sku.id for sku, _ in parts])
        return [
            BundleComponent(quantity=q, sku=Sku.from_model(sku, stock, self._scope))
            for (sku, q), stock in zip(parts, stocks, strict=True)
        ]


@strawberry.type
class Product(Node):
    slug: str
    name: str
    description: str
    _row: strawberry.Private[rows.Product]
    _scope: strawberry.Private[ChannelScope]

    @classmethod
    def from_model(cls, row: rows.Product, scope: ChannelScope) -> Product:
        return cls(
            id=encode_id("Product", row.id),
            slug=row.slug,
            name=row.name,
            description=row.description,
            _row=row,
            _scope=scope,
        )

    @strawberry.field
    async def brand(self, info: Info) -> Brand:
        return Brand.from_model(await info.context.loaders.brand_by_id.load(self._row.brand_id))

    @strawberry.field
    async def category(self, info: Info) -> Category:
        return Category.from_model(
            await info.context.loaders.category_by_id.load(self._row.category_id)
        )

    @strawberry.field(description="Active SKUs, cheapest first, priced for the query's channel.")
    async def skus(self, info: Info) -> list[Sku]:
        loaders = info.context.loaders
        skus = await loaders.skus_by_product.load(self._row.id)
        # One batched stock look-up per list: leaf fields stay plain attributes.
        stocks = await loaders.stock_by_sku.load_many([sku.id for sku in skus])
        return [Sku.from_model(sku, stock, self._scope) for sku, stock in zip(skus, stocks, strict=True)]

