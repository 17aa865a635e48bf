"""Root types merged from each domain, and the schema built from them."""

from __future__ import annotations

import strawberry
from strawberry.tools import merge_types

from resolvers.catalog import CatalogQuery
from schema.catalog import Brand, Category, Product, Sku, Supplier
from schema.channel import Channel

Query = merge_types("Query", (CatalogQuery,))


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, types=[Product, Sku, Brand, Category, Supplier, Channel])
