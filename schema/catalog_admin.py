"""Types of the product center: the catalog change log and what an import did."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from models import catalog as rows
from schema.relay import Node, PageInfo, encode_id


@strawberry.enum(description="What kind of catalog object a change or a record is about.")
class CatalogEntity(enum.Enum):
    BRAND = "BRAND"
    CATEGORY = "CATEGORY"
    PRODUCT = "PRODUCT"
    SKU = "SKU"
    CHANNEL = "CHANNEL"
    SUPPLIER = "SUPPLIER"
    LISTING = "LISTING"
    SALE = "SALE"


@strawberry.type(description="One change to the catalog: who, when, what, before and after (never a secret).")
class CatalogChange(Node):
    entity: CatalogEntity
    code: str = strawberry.field(description="The object's code (a product's slug; a listing: channel/product).")
    action: str = strawberry.field(description="CREATED, UPDATED, ARCHIVED, LISTED, UNLISTED, CONNECTED, SCHEDULED or CANCELLED.")
    actor: str
    before: JSON | None = strawberry.field(description="The object as a catalog record; null before it existed.")
    after: JSON | None = strawberry.field(description="The object as a catalog record; null once archived or unlisted.")
    at: datetime

    @classmethod
    def from_model(cls, row: rows.CatalogChange) -> CatalogChange:
        return cls(
            id=encode_id("CatalogChange", row.id), entity=CatalogEntity(row.entity), code=row.code,
            action=row.action, actor=row.actor, before=row.before, after=row.after, at=row.at,
        )


@strawberry.type
class CatalogChangeEdge:
    cursor: str
    node: CatalogChange


@strawberry.type
class CatalogChangeConnection:
    edges: list[CatalogChangeEdge]
    page_info: PageInfo


@strawberry.type(description="How many records of a type an import creates, updates and leaves as they are.")
class CatalogImportCount:
    type: str
    created: int
    updated: int
    unchanged: int


@strawberry.type(description="One record that changes something: its place in the input and the fields it changes.")
class CatalogImportChange:
    index: int
    type: str
    code: str
    action: str = strawberry.field(description="CREATE or UPDATE.")
    fields: list[str]
