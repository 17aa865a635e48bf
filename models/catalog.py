"""Catalog: brands, categories, suppliers, products, their SKUs, listings and the change log.

Every row an operator edits carries a `version`: an update names the version it read and
is one conditional UPDATE on it, so of two operators editing from the same version one
wins and the other hears of the conflict. Archived rows stay (`archived_at`): past orders,
statements and codes keep pointing at them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.catalog import SkuKind
from models.base import Base, str_enum, utcnow


class Brand(Base):
    __tablename__ = "brand"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    archived_at: Mapped[datetime | None]


class Category(Base):
    __tablename__ = "category"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("category.id"))
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    archived_at: Mapped[datetime | None]


class Supplier(Base):
    __tablename__ = "supplier"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    # How to reach it: the adapter kind, its base URL, its signing secret (sealed with
    # services/core/secret_box.py, never stored in clear) and how long to wait for an answer.
    adapter: Mapped[str] = mapped_column(String(32), default="http", server_default="http")
    base_url: Mapped[str | None] = mapped_column(String(500))
    secret_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    timeout_seconds: Mapped[float] = mapped_column(default=5.0, server_default="5")
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    archived_at: Mapped[datetime | None]


class Product(Base):
    __tablename__ = "product"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    brand_id: Mapped[int] = mapped_column(ForeignKey("brand.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("category.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Pictures (absolute https URLs, in display order) and free attributes (name -> text).
    image_urls: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    attributes: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    archived_at: Mapped[datetime | None]


class Sku(Base):
    __tablename__ = "sku"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), index=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[SkuKind] = mapped_column(str_enum(SkuKind))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    # Money in integer fen.
    face_value_fen: Mapped[int] = mapped_column(BigInteger)
    supplier_cost_fen: Mapped[int] = mapped_column(BigInteger)
    base_price_fen: Mapped[int] = mapped_column(BigInteger)
    # Price control (控价): no channel may sell below the floor or above the ceiling.
    price_floor_fen: Mapped[int | None] = mapped_column(BigInteger)
    price_ceiling_fen: Mapped[int | None] = mapped_column(BigInteger)
    # Orders accepted before codes exist, up to this many units.
    presale_cap: Mapped[int] = mapped_column(default=0)
    presale_used: Mapped[int] = mapped_column(default=0, server_default="0")
    active: Mapped[bool] = mapped_column(default=True)
    # Uses of each serial imported without a count of its own (SERIAL only).
    serial_uses: Mapped[int] = mapped_column(default=1, server_default="1")
    # The account formats a top-up accepts (domain/recharge_accounts.py), comma-separated;
    # empty: any account.
    account_formats: Mapped[str] = mapped_column(String(64), default="", server_default="")
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    archived_at: Mapped[datetime | None]


class SkuSupplier(Base):
    """The suppliers that can fulfil a SKU, tried in ascending priority."""

    __tablename__ = "sku_supplier"
    __table_args__ = (UniqueConstraint("sku_id", "priority"),)

    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), primary_key=True)
    priority: Mapped[int]
    # The supplier's own name for the product (sent on a top-up; the SKU code when unset)
    # and what it charges per unit (the SKU's supplier cost when unset).
    product_code: Mapped[str | None] = mapped_column(String(64))
    cost_fen: Mapped[int | None] = mapped_column(BigInteger)


class BundleItem(Base):
    """One component of a BUNDLE SKU."""

    __tablename__ = "bundle_item"
    __table_args__ = (Index("ix_bundle_item_component", "component_sku_id"),)

    bundle_sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True)
    component_sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True)
    quantity: Mapped[int] = mapped_column(default=1)


class Listing(Base):
    """A product on sale on a channel, at a place in the channel's catalog (ascending).

    A product without a listing on a channel is not sold there: new products start
    on no channel at all.
    """

    __tablename__ = "listing"
    __table_args__ = (Index("ix_listing_channel_position", "channel_id", "position", "product_id"),)

    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), primary_key=True, index=True)
    position: Mapped[int]
    listed_at: Mapped[datetime] = mapped_column(default=utcnow)


class CatalogChange(Base):
    """One change to the catalog: who, when, what, and the object before and after it.

    `before` and `after` are the object as the catalog file writes it (never a secret);
    None before a creation. Rows are only ever added.
    """

    __tablename__ = "catalog_change"
    __table_args__ = (Index("ix_catalog_change_entity", "entity", "code", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(16))  # BRAND, CATEGORY, PRODUCT, SKU, CHANNEL, SUPPLIER, LISTING
    entity_id: Mapped[int]
    code: Mapped[str] = mapped_column(String(160))  # the object's code (a listing: channel/product)
    action: Mapped[str] = mapped_column(String(16))  # CREATED, UPDATED, ARCHIVED, LISTED, UNLISTED
    actor: Mapped[str] = mapped_column(String(120))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)
