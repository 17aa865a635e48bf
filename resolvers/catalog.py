"""Root catalog fields: products, product, node, channels."""

from __future__ import annotations

import strawberry
from sqlalchemy import select

from domain.access import may_read_channel
from domain.catalog import SkuKind as SkuKindValue
from models import Channel as ChannelRow
from models import Product as ProductRow
from resolvers.access import caller_scope, readable_channel
from resolvers.private_nodes import private_node
from schema.catalog import Brand, Category, Product, SkuKind, Supplier, load_products, load_skus
from schema.channel import Channel, ChannelScope
from schema.context import Info
from schema.errors import BadUserInput
from schema.relay import (
    Node,
    PageInfo,
    decode_cursor,
    decode_id,
    encode_cursor,
    page_info,
    page_size,
)
from schema.selection import selects
from services.catalog import reads


@strawberry.input(description="Every given field must match.")
class ProductFilter:
    brand: str | None = strawberry.field(default=None, description="Brand code.")
    category: str | None = strawberry.field(default=None, description="Category code.")
    kind: SkuKind | None = strawberry.field(default=None, description="Has an active SKU of this kind.")  # type: ignore[valid-type]
    text: str | None = strawberry.field(default=None, description="Substring of name or description.")

    def to_query(self) -> reads.ProductFilter:
        if self.text is not None and len(self.text) > 100:
            raise BadUserInput("filter.text is limited to 100 characters", field="filter.text")
        kind = SkuKindValue(self.kind.value) if self.kind is not None else None
        return reads.ProductFilter(brand=self.brand, category=self.category, kind=kind, text=self.text)


@strawberry.type
class ProductEdge:
    cursor: str
    node: Product


@strawberry.type
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo
    _filter: strawberry.Private[reads.ProductFilter]
    _channel_id: strawberry.Private[int | None] = None

    @strawberry.field(description="Products matching the filter, across all pages.")
    async def total_count(self, info: Info) -> int:
        async with info.context.db.read_sessions() as session:
            return await reads.count_products(session, self._filter, self._channel_id)


@strawberry.type
class CatalogQuery:
    @strawberry.field(description="A channel's catalog, in its listing order, one page at a time (at most 100 a page).")
    async def products(
        self,
        info: Info,
        channel: str,
        first: int | None = 20,
        after: str | None = None,
        filter: ProductFilter | None = None,
    ) -> ProductConnection:
        scope = ChannelScope.of(await readable_channel(info, channel))
        limit = page_size(first, default=20, maximum=info.context.settings.limits.max_page_size)
        after_id = decode_cursor(after, "Product") if after is not None else None
        query = filter.to_query() if filter else reads.ProductFilter()
        async with info.context.db.read_sessions() as session:
            rows, more = await reads.product_page(session, query, after_id=after_id, limit=limit, channel_id=scope.channel_id)
        for row in rows:
            info.context.loaders.product_by_id.prime(row.id, row)
        with_skus = selects(info.selected_fields, ("products", "edges", "node", "skus"))
        products = await load_products(info, rows, scope, with_skus=with_skus)
        edges = [
            ProductEdge(cursor=encode_cursor("Product", row.id), node=product)
            for row, product in zip(rows, products, strict=True)
        ]
        return ProductConnection(
            edges=edges,
            page_info=page_info([edge.cursor for edge in edges], more=more, after=after_id),
            _filter=query,
            _channel_id=scope.channel_id,
        )

    @strawberry.field(description="One product listed on a channel, by global ID or slug.")
    async def product(
        self, info: Info, channel: str, id: strawberry.ID | None = None, slug: str | None = None
    ) -> Product | None:
        if (id is None) == (slug is None):
            raise BadUserInput("give exactly one of id and slug", field="id")
        scope = ChannelScope.of(await readable_channel(info, channel))
        if id is not None:
            type_name, pk = decode_id(id)
            if type_name != "Product":
                return None
            if await info.context.loaders.listing_by_channel_product.load((scope.channel_id or 0, pk)) is None:
                return None
            row = await info.context.loaders.product_by_id.load(pk)
        else:
            async with info.context.db.read_sessions() as session:
                row = await reads.product_by_slug(session, slug or "", scope.channel_id)
        return Product.from_model(row, scope) if row is not None and row.active else None

    @strawberry.field(description="Any object by its global ID; null when unknown or not visible.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        type_name, pk = decode_id(id)
        loaders = info.context.loaders
        if type_name == "Product":
            row = await loaders.product_by_id.load(pk)
            return Product.from_model(row, await caller_scope(info)) if row and await _visible(info, row) else None
        if type_name == "Sku":
            sku = await loaders.sku_by_id.load(pk)
            if sku is None or not (sku.active or info.context.principal.is_admin):
                return None
            # A withdrawn product takes its SKUs out of the catalog with it.
            product = await loaders.product_by_id.load(sku.product_id)
            if product is None or not await _visible(info, product):
                return None
            return (await load_skus(info, [sku], await caller_scope(info)))[0]
        if type_name == "Brand":
            brand = await loaders.brand_by_id.load(pk)
            return Brand.from_model(brand) if brand else None
        if type_name == "Category":
            category = await loaders.category_by_id.load(pk)
            return Category.from_model(category) if category else None
        if type_name == "Supplier" and info.context.principal.is_admin:
            supplier = await loaders.supplier_by_id.load(pk)
            return Supplier.from_model(supplier) if supplier else None
        if type_name == "Channel":
            async with info.context.db.read_sessions() as session:
                channel = await session.get(ChannelRow, pk)
            if channel and may_read_channel(info.context.principal, channel.code, public=channel.public):
                return Channel.from_model(channel)
            return None
        return await private_node(info, type_name, pk)

    @strawberry.field(description="Channels the caller may see: all for operators (archived ones too), else its own and the public ones.")
    async def channels(self, info: Info) -> list[Channel]:
        principal = info.context.principal
        async with info.context.db.read_sessions() as session:
            rows = await session.scalars(select(ChannelRow).order_by(ChannelRow.id))
            if principal.is_admin:
                visible = list(rows)
            elif principal.role is None:
                # An archived storefront is gone from the list, though its orders stay readable.
                visible = [r for r in rows if r.archived_at is None and may_read_channel(principal, r.code, public=r.public)]
            else:
                # A partner's or storefront's key lists its own channel only.
                visible = [r for r in rows if r.code == principal.channel]
        return [Channel.from_model(row) for row in visible]


async def _visible(info: Info, product: ProductRow) -> bool:
    """Operators see every product, archived ones too; anyone else an active product listed
    on an active channel they may read (their key's own, or a public storefront)."""
    principal = info.context.principal
    if principal.is_admin:
        return True
    if not product.active:
        return False
    listings = await info.context.loaders.listings_by_product.load(product.id)
    return any(
        channel.active and may_read_channel(principal, channel.code, public=channel.public) for channel, _ in listings
    )
