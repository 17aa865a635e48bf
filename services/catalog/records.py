"""The catalog as records: one dict per object, keyed by codes, in one canonical form.

The same record is a line of a catalog file (`quanyi export-catalog`), what an import or
the bulk mutation sends, and the before and after of the change log. Canonical: every key
present, in the order below, amounts as decimal strings in the object's currency, lists in
a fixed order; so a record read back from the database equals the record that wrote it,
and an export imported elsewhere exports to the same bytes. Never a secret.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.channel_rules import rate_of
from domain.money import minor_digits
from domain.recharge_accounts import parse_formats
from models import Brand, Category, Channel, Product, Sku, Supplier

# Record types in the order an import applies them: what others refer to comes first.
TYPES = ("channel", "supplier", "brand", "category", "product", "sku", "listing")

KEYS: dict[str, tuple[str, ...]] = {
    "channel": ("type", "code", "name", "kind", "currency", "commissionRate", "settlementCycle",
                "settlementTimeZone", "public", "active"),
    "supplier": ("type", "code", "name", "active"),
    "brand": ("type", "code", "name"),
    "category": ("type", "code", "name"),
    "product": ("type", "slug", "name", "brand", "category", "description", "imageUrls", "attributes"),
    "sku": ("type", "code", "product", "name", "kind", "currency", "basePrice", "faceValue", "supplierCost",
            "priceFloor", "priceCeiling", "presaleCap", "serialUses", "rechargeAccountFormats", "components",
            "pool", "suppliers"),
    "listing": ("type", "channel", "product", "position"),
}

# Every column of the CSV form, in order: the keys of all types, each once.
COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(key for keys in KEYS.values() for key in keys))


def key_of(record: dict[str, Any]) -> str:
    """What identifies a record's object: its code, slug, or channel/product for a listing."""
    kind = record.get("type")
    if kind == "product":
        return str(record.get("slug"))
    if kind == "listing":
        return f"{record.get('channel')}/{record.get('product')}"
    return str(record.get("code"))


def _amount(fen: int | None, currency: str) -> str | None:
    """Fen as the decimal string Money.amount prints ("9.90", "-0.05"), without building one:
    an export of ten thousand SKUs formats fifty thousand amounts."""
    if fen is None:
        return None
    digits = minor_digits(currency)
    if digits == 0:
        return str(fen)
    text = str(abs(fen)).rjust(digits + 1, "0")
    return f"{'-' if fen < 0 else ''}{text[:-digits]}.{text[-digits:]}"


def channel_record(row: Channel) -> dict[str, Any]:
    return {
        "type": "channel", "code": row.code, "name": row.name, "kind": row.kind.value, "currency": row.currency,
        "commissionRate": str(rate_of(row.commission_bp)), "settlementCycle": row.settlement_cycle.value,
        "settlementTimeZone": row.settlement_time_zone, "public": row.public, "active": row.active,
    }


def supplier_record(row: Supplier) -> dict[str, Any]:
    return {"type": "supplier", "code": row.code, "name": row.name, "active": row.active}


def brand_record(row: Brand) -> dict[str, Any]:
    return {"type": "brand", "code": row.code, "name": row.name}


def category_record(row: Category) -> dict[str, Any]:
    return {"type": "category", "code": row.code, "name": row.name}


def product_record(row: Product, brand: str, category: str) -> dict[str, Any]:
    return {
        "type": "product", "slug": row.slug, "name": row.name, "brand": brand, "category": category,
        "description": row.description, "imageUrls": list(row.image_urls or []),
        "attributes": dict(sorted((row.attributes or {}).items())),
    }


def sku_record(
    row: Sku, product: str, components: Iterable[tuple[str, int]],
    suppliers: Iterable[tuple[str, int, str | None, int | None]], pool: Iterable[tuple[str, int]] = (),
) -> dict[str, Any]:
    """`components`: (SKU code, quantity); `suppliers`: (code, priority, product code, cost fen);
    `pool`: a blind box's (item SKU code, weight), in the order the box publishes them."""
    currency = row.currency
    return {
        "type": "sku", "code": row.code, "product": product, "name": row.name, "kind": row.kind.value,
        "currency": currency, "basePrice": _amount(row.base_price_fen, currency),
        "faceValue": _amount(row.face_value_fen, currency), "supplierCost": _amount(row.supplier_cost_fen, currency),
        "priceFloor": _amount(row.price_floor_fen, currency), "priceCeiling": _amount(row.price_ceiling_fen, currency),
        "presaleCap": row.presale_cap, "serialUses": row.serial_uses,
        "rechargeAccountFormats": [f.value for f in parse_formats(row.account_formats)],
        "components": [{"sku": code, "quantity": quantity} for code, quantity in sorted(components)],
        "pool": [{"sku": code, "weight": weight} for code, weight in pool],
        "suppliers": [
            {"supplier": code, "priority": priority, "productCode": product_code, "cost": _amount(cost, currency)}
            for code, priority, product_code, cost in sorted(suppliers, key=lambda s: s[1])
        ],
    }


def listing_record(channel: str, product: str, position: int) -> dict[str, Any]:
    return {"type": "listing", "channel": channel, "product": product, "position": position}
