"""Catalog: brands, categories, suppliers, products and their SKUs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.catalog import SkuKind
from models.base import Base, str_enum, utcnow


class Brand(Base):
    __tablename__ = "brand"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Category(Base):
    __tablename__ = "category"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("category.id"))


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


class SkuSupplier(Base):
    """The suppliers that can fulfil a SKU, tried in ascending priority."""

    __tablename__ = "sku_supplier"
    __table_args__ = (UniqueConstraint("sku_id", "priority"),)

    sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"), primary_key=True)
    priority: Mapped[int]


class BundleItem(Base):
    """One component of a BUNDLE SKU."""

    __tablename__ = "bundle_item"
    __table_args__ = (Index("ix_bundle_item_component", "component_sku_id"),)

    bundle_sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True)
    component_sku_id: Mapped[int] = mapped_column(ForeignKey("sku.id"), primary_key=True)
    quantity: Mapped[int] = mapped_column(default=1)
