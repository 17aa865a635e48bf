"""Catalog reads answered from their plan (catalog_plan.py) rather than field by field.

A page costs two statements on one read connection: the page of products, and its stock
(services/catalog/page_stock.py); channels, brands, categories, SKUs and their pricing come
from the process's reference data (services/catalog/reference.py), read on first use and
dropped by catalog events. The answer is then built from plain rows with the plan's shapes.

The answer is the one graphql-core would give: the same checks (the channel exists, is
active and readable by the caller), the same values (the schema's own encodings of IDs,
cursors, money and times), the same field order. Anything that would be an error — an
unknown or forbidden channel, a bad `first` or cursor, a filter too long — or anything
unexpected is handed back (`None`), and graphql-core runs the document, with its errors and
their paths.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLScalarType, GraphQLSchema, OperationDefinitionNode, OperationType
from sqlalchemy import select

from domain import money
from domain.access import Principal, may_read_channel
from domain.catalog import SkuKind, StockFigures
from domain.recharge_accounts import parse_formats
from models import Product
from resolvers.catalog import ProductFilter
from schema.errors import ApiError
from schema.relay import decode_cursor, encode_cursor, encode_id, page_size
from services.catalog import reads
from services.catalog.page_stock import page_stock
from services.catalog.reference import NamedRef, Reference, SkuRef
from services.core.database import Database
from services.pricing.prices import SkuPricing
from transport.catalog_plan import FIELDS, Plan, RootField, Shape, plan
from transport.documents import BoundedCache

log = logging.getLogger("quanyi.catalog")

_PRODUCT_COLUMNS = (
    Product.id, Product.slug, Product.name, Product.description, Product.brand_id, Product.category_id,
    Product.image_urls, Product.attributes, Product.version, Product.archived_at,
)
_NAMES = frozenset(name for fields in FIELDS.values() for name in fields)
_NO_PLAN = Plan(())  # kept for documents and variables that have none


class CatalogRun:
    """Plans per document and variables, kept in a bounded cache, and their execution."""

    def __init__(self, schema: GraphQLSchema, db: Database, reference: Reference, *, max_page_size: int,
                 cache_size: int = 512) -> None:
        self._schema = schema
        self._db = db
        self._reference = reference
        self._max_page_size = max_page_size
        self._plans: BoundedCache[tuple[str, str | None, bytes], Plan] = BoundedCache(cache_size)
        self._screened: BoundedCache[tuple[str, str | None], bool] = BoundedCache(cache_size)
        datetime_type = schema.type_map["DateTime"]
        assert isinstance(datetime_type, GraphQLScalarType)
        self._instant: Callable[[Any], Any] = datetime_type.serialize

    async def data(
        self, query: str, document: DocumentNode, operation: OperationDefinitionNode, operation_name: str | None,
        variables: dict[str, Any] | None, principal: Principal,
    ) -> dict[str, Any] | None:
        """The answer's `data`, or None: graphql-core runs the document."""
        found = self._plan(query, document, operation, operation_name, variables)
        if found is None:
            return None
        try:
            return await self._run(found, principal, datetime.now(UTC))
        except _Fallback:
            return None
        except Exception:
            # graphql-core runs it again and reports what went wrong (logged with the request
            # id, masked in the answer, with its path).
            log.debug("a catalog plan failed; running the document field by field", exc_info=True)
            return None

    def _plan(
        self, query: str, document: DocumentNode, operation: OperationDefinitionNode, operation_name: str | None,
        variables: dict[str, Any] | None,
    ) -> Plan | None:
        if operation.operation is not OperationType.QUERY:
            return None
        screened = self._screened.get((query, operation_name))
        if screened is None:
            screened = _only_catalog_fields(document)
            self._screened.put((query, operation_name), screened)
        if not screened:
            return None
        try:
            encoded = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS) if variables else b""
        except (TypeError, orjson.JSONEncodeError):
            return None
        key = (query, operation_name, encoded)
        found = self._plans.get(key)
        if found is None:
            found = plan(self._schema, document, operation, variables) or _NO_PLAN
            self._plans.put(key, found)
        return found if found is not _NO_PLAN else None

    async def _run(self, found: Plan, principal: Principal, now: datetime) -> dict[str, Any]:
        data: dict[str, Any] = {}
        async with self._db.read_connection() as conn:  # the replica while it is current
            for field in found.fields:
                if field.name == "__typename":
                    data[field.key] = "Query"
                else:
                    page = await _Page.read(conn, field, self._reference, principal, now, self._max_page_size)
                    data[field.key] = page.connection(field.shape, self._instant) if field.shape else {}
        return data


class _Fallback(Exception):
    """graphql-core answers this one (an error to report with its path)."""


def _only_catalog_fields(document: DocumentNode) -> bool:
    """Whether every field the document names is one a plan may answer: the cheap test that
    spares other documents the planning."""
    from graphql import FieldNode, visit
    from graphql.language import Visitor

    class Names(Visitor):
        ok = True

        def enter_field(self, node: FieldNode, *_: object) -> None:
            if node.name.value not in _NAMES:
                self.ok = False

        def enter_directive(self, node: Any, *_: object) -> None:
            if node.name.value not in ("skip", "include"):
                self.ok = False

    names = Names()
    visit(document, names)
    return names.ok


# Building a page's statement costs more than SQLAlchemy's run of it once compiled: the
# statements of the pages asked for most are kept, by filter, cursor, size and channel.
_STATEMENTS: BoundedCache[tuple[reads.ProductFilter, int | None, int, int], Any] = BoundedCache(256)


def _page_statement(query: reads.ProductFilter, after_id: int | None, limit: int, channel_id: int) -> Any:
    key = (query, after_id, limit, channel_id)
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = reads.page_query(select(*_PRODUCT_COLUMNS), query, after_id=after_id, limit=limit,
                                     channel_id=channel_id)
        _STATEMENTS.put(key, statement)
    return statement


class _Page:
    """One root `products` field's rows: the page, and what its shape asks of each row."""

    def __init__(self) -> None:
        self.rows: Sequence[Any] = ()
        self.more = False
        self.after: int | None = None
        self.brands: dict[int, NamedRef] = {}
        self.categories: dict[int, NamedRef] = {}
        self.skus: dict[int, tuple[SkuRef, ...]] = {}
        self.stock: dict[int, StockFigures] = {}
        self.pricing: dict[tuple[int, int], SkuPricing] = {}
        self.channel_id = 0
        self.now = datetime.now(UTC)

    @classmethod
    async def read(
        cls, conn: Any, field: RootField, reference: Reference, principal: Principal, now: datetime, max_page: int,
    ) -> _Page:
        arguments = field.arguments
        channel = await reference.channel(conn, arguments["channel"])
        if channel is None or not channel.active or not may_read_channel(principal, channel.code, public=channel.public):
            raise _Fallback
        try:
            limit = page_size(arguments.get("first"), default=20, maximum=max_page)
            after = arguments.get("after")
            after_id = decode_cursor(after, "Product") if after is not None else None
            given = arguments.get("filter")
            # graphql-core hands the input over as a dict; strawberry's resolver would build it.
            query = ProductFilter(**given).to_query() if given is not None else reads.ProductFilter()
        except ApiError:
            raise _Fallback from None
        page = cls()
        page.channel_id, page.now, page.after = channel.id, now, after_id
        rows = (await conn.execute(_page_statement(query, after_id, limit, channel.id))).all()
        page.rows, page.more = rows[:limit], len(rows) > limit
        node = _below(field.shape, "edges", "node")
        if node is None or not page.rows:
            return page
        if node.wants("brand"):
            page.brands = await reference.brands(conn, {row.brand_id for row in page.rows})
        if node.wants("category"):
            page.categories = await reference.categories(conn, {row.category_id for row in page.rows})
        sku = node.below("skus")
        if sku is None:
            return page
        page.skus, parts = await reference.skus(conn, [row.id for row in page.rows])
        listed = [s for row in page.rows for s in page.skus[row.id]]
        if sku.wants("stock"):
            kinds = {s.id: s.kind for s in listed}
            components = {c for s in listed if s.kind in (SkuKind.BUNDLE, SkuKind.BLIND_BOX) for c, _ in parts.get(s.id, ())}
            if components:
                found = await reference.components(conn, components)
                kinds.update({c: found[c].kind for c in components if c in found})
            page.stock = await page_stock(
                conn, channel.id, kinds, [s.id for s in listed], lambda i: parts.get(i, ()), now
            )
        if sku.wants("price") or sku.wants("priceTiers"):
            page.pricing = await reference.pricing(conn, channel.id, listed, now)
        return page

    # --- the answer ------------------------------------------------------------------------

    def connection(self, shape: Shape, instant: Callable[[Any], Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, name, below in shape.fields:
            if name == "edges":
                out[key] = [self._edge(below, row, instant) for row in self.rows]  # type: ignore[arg-type]
            elif name == "pageInfo":
                out[key] = self._page_info(below)  # type: ignore[arg-type]
            else:
                out[key] = "ProductConnection"
        return out

    def _page_info(self, shape: Shape) -> dict[str, Any]:
        values = {
            "hasNextPage": self.more,
            "hasPreviousPage": self.after is not None,
            "startCursor": encode_cursor("Product", self.rows[0].id) if self.rows else None,
            "endCursor": encode_cursor("Product", self.rows[-1].id) if self.rows else None,
            "__typename": "PageInfo",
        }
        return {key: values[name] for key, name, _ in shape.fields}

    def _edge(self, shape: Shape, row: Any, instant: Callable[[Any], Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, name, below in shape.fields:
            if name == "node":
                out[key] = self._product(below, row, instant)  # type: ignore[arg-type]
            elif name == "cursor":
                out[key] = encode_cursor("Product", row.id)
            else:
                out[key] = "ProductEdge"
        return out

    def _product(self, shape: Shape, row: Any, instant: Callable[[Any], Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, name, below in shape.fields:
            if name == "id":
                out[key] = encode_id("Product", row.id)
            elif name == "skus":
                out[key] = [self._sku(below, sku, instant) for sku in self.skus[row.id]]  # type: ignore[arg-type]
            elif name == "brand":
                out[key] = _named(below, self.brands[row.brand_id], "Brand", instant)  # type: ignore[arg-type]
            elif name == "category":
                out[key] = _named(below, self.categories[row.category_id], "Category", instant)  # type: ignore[arg-type]
            elif name == "imageUrls":
                out[key] = list(row.image_urls or [])
            elif name == "attributes":
                out[key] = dict(row.attributes or {})
            elif name == "archivedAt":
                out[key] = instant(row.archived_at) if row.archived_at is not None else None
            elif name == "__typename":
                out[key] = "Product"
            else:  # slug, name, description, version
                out[key] = getattr(row, name)
        return out

    def _sku(self, shape: Shape, sku: SkuRef, instant: Callable[[Any], Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, name, below in shape.fields:
            if name == "id":
                out[key] = encode_id("Sku", sku.id)
            elif name == "price":
                unit = self.pricing[(self.channel_id, sku.id)].at(self.now).unit
                out[key] = _money(below, unit)  # type: ignore[arg-type]
            elif name == "stock":
                out[key] = _stock(below, self.stock[sku.id])  # type: ignore[arg-type]
            elif name == "kind":
                out[key] = sku.kind.name
            elif name == "faceValue":
                out[key] = _money(below, money.Money(sku.face_value_fen, sku.currency))  # type: ignore[arg-type]
            elif name == "priceTiers":
                pricing = self.pricing[(self.channel_id, sku.id)]
                out[key] = [_tier(below, t.min_quantity, pricing.at(self.now, t.min_quantity).unit)  # type: ignore[arg-type]
                            for t in pricing.tiers]
            elif name == "rechargeAccountFormats":
                out[key] = [f.name for f in parse_formats(sku.account_formats)]
            elif name == "archivedAt":
                out[key] = instant(sku.archived_at) if sku.archived_at is not None else None
            elif name == "__typename":
                out[key] = "Sku"
            else:  # code, name, currency, serialUses, version
                out[key] = getattr(sku, _ATTRIBUTE.get(name, name))
        return out


_ATTRIBUTE = {"serialUses": "serial_uses"}


def _below(shape: Shape | None, *path: str) -> Shape | None:
    for name in path:
        if shape is None:
            return None
        shape = shape.below(name)
    return shape


def _named(shape: Shape, row: NamedRef, type_name: str, instant: Callable[[Any], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name, _ in shape.fields:
        if name == "id":
            out[key] = encode_id(type_name, row.id)
        elif name == "archivedAt":
            out[key] = instant(row.archived_at) if row.archived_at is not None else None
        elif name == "__typename":
            out[key] = type_name
        else:  # code, name, version
            out[key] = getattr(row, name)
    return out


def _money(shape: Shape, value: money.Money) -> dict[str, Any]:
    amount: Decimal = value.amount
    values = {"amount": str(amount), "currency": value.currency, "__typename": "Money"}
    return {key: values[name] for key, name, _ in shape.fields}


def _stock(shape: Shape, figures: StockFigures) -> dict[str, Any]:
    values = {"available": figures.available, "reserved": figures.reserved, "presale": figures.presale,
              "__typename": "Stock"}
    return {key: values[name] for key, name, _ in shape.fields}


def _tier(shape: Shape, minimum: int, unit: money.Money) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, name, below in shape.fields:
        if name == "minQuantity":
            out[key] = minimum
        elif name == "price":
            out[key] = _money(below, unit)  # type: ignore[arg-type]
        else:
            out[key] = "PriceTier"
    return out
