"""Raw records (a file's lines, the bulk mutation's items, a command's input) into canonical
records, every problem named by its field. Nothing is written here.

A record for an object that exists changes only the keys it gives: the others keep their
stored values. References (a product's brand, a SKU's product, components, a box's pool
items and suppliers, a listing's channel and product) resolve to stored objects or to objects of the same import.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from domain.catalog import SkuKind
from domain.catalog_input import Checker, CodeKind, fold_code
from domain.catalog_skus import (
    Component,
    ComponentFacts,
    SupplierLine,
    check_components,
    check_kind_fields,
    check_prices,
    check_suppliers,
)
from domain.channel_rules import check_currency, check_time_zone, commission_bp, rate_of
from domain.draws import MAX_POOL, MAX_WEIGHT
from domain.recharge_accounts import AccountFormat
from models import ChannelKind, SettlementCycle
from services.catalog.records import KEYS, TYPES
from services.catalog.state import KEY_KINDS, CatalogState

MAX_POSITION = 1_000_000
_KEY_FIELD = {"product": "slug", "listing": "channel"}


@dataclass
class Cleaned:
    """The canonical records of an import so far, by type and key."""

    by_type: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {t: {} for t in TYPES})


@dataclass
class Cleaner:
    state: CatalogState
    # Every record of the import by (type, key): what the import itself creates.
    raw_index: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    cleaned: Cleaned = field(default_factory=Cleaned)

    def key(self, check: Checker, raw: dict[str, Any]) -> tuple[str, str] | None:
        """The record's type and the key of its object, or None (with the problem noted)."""
        kind = raw.get("type")
        if kind not in TYPES:
            check.add("type", f"one of {', '.join(TYPES)}", "INVALID_TYPE")
            return None
        unknown = sorted(set(raw) - set(KEYS[kind]))
        for name in unknown:
            check.add(str(name), f"a {kind} record has no field {name!r}", "UNKNOWN_FIELD")
        if kind == "listing":
            channel = check.code("channel", raw.get("channel"), CodeKind.CODE)
            product = check.code("product", raw.get("product"), CodeKind.SLUG)
            return (kind, f"{channel}/{product}") if channel and product else None
        folded = check.code(_KEY_FIELD.get(kind, "code"), raw.get(_KEY_FIELD.get(kind, "code")), KEY_KINDS[kind])
        return (kind, folded) if folded else None

    def clean(self, check: Checker, kind: str, key: str, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The canonical record `raw` asks for (the stored object's values where it is silent)."""
        stored = self.state.record_of(kind, key)
        merged = dict(stored or {})
        merged.update({k: v for k, v in raw.items() if k in KEYS[kind]})
        before = len(check.problems)
        record = getattr(self, f"_{kind}")(check, key, merged, stored)
        return record if len(check.problems) == before else None

    # -- one method per record type ----------------------------------------------------------

    def _channel(self, check: Checker, code: str, r: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        currency = check_currency(check, r.get("currency", "CNY"))
        if stored is not None and currency and currency != stored["currency"]:
            check.add("currency", "a channel's currency cannot change: its prices and orders are in it", "IMMUTABLE")
        return {
            "type": "channel", "code": code, "name": check.name("name", r.get("name")),
            "kind": _choice(check, "kind", r.get("kind"), ChannelKind),
            "currency": currency, "commissionRate": str(rate_of(commission_bp(check, r.get("commissionRate")))),
            "settlementCycle": _choice(check, "settlementCycle", r.get("settlementCycle", "MONTHLY"), SettlementCycle),
            "settlementTimeZone": check_time_zone(check, r.get("settlementTimeZone", "Asia/Shanghai")),
            "public": _flag(check, "public", r.get("public", False)),
            "active": _flag(check, "active", r.get("active", True)),
        }

    def _supplier(self, check: Checker, code: str, r: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        return {"type": "supplier", "code": code, "name": check.name("name", r.get("name")),
                "active": _flag(check, "active", r.get("active", True))}

    def _brand(self, check: Checker, code: str, r: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        return {"type": "brand", "code": code, "name": check.name("name", r.get("name"))}

    def _category(self, check: Checker, code: str, r: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        return {"type": "category", "code": code, "name": check.name("name", r.get("name"))}

    def _product(self, check: Checker, slug: str, r: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "type": "product", "slug": slug, "name": check.name("name", r.get("name")),
            "brand": self._reference(check, "brand", "brand", r.get("brand")),
            "category": self._reference(check, "category", "category", r.get("category")),
            "description": check.text("description", r.get("description")),
            "imageUrls": check.image_urls("imageUrls", r.get("imageUrls")),
            "attributes": check.attributes("attributes", r.get("attributes")),
        }

    def _sku(self, check: Checker, code: str, r: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        kind_name = _choice(check, "kind", r.get("kind"), SkuKind)
        currency = check_currency(check, r.get("currency", "CNY"))
        product = self._reference(check, "product", "product", r.get("product"))
        if stored is not None:
            for name, value in (("kind", kind_name), ("currency", currency), ("product", product)):
                if value and value != stored[name]:
                    check.add(name, f"a SKU's {name} cannot change once it exists", "IMMUTABLE")
        if not (kind_name and currency):
            return {}
        kind = SkuKind(kind_name)
        prices = check_prices(check, currency, base=r.get("basePrice"), face=r.get("faceValue"),
                              cost=r.get("supplierCost"), floor=r.get("priceFloor"), ceiling=r.get("priceCeiling"))
        formats = [AccountFormat(v) for v in _choices(check, "rechargeAccountFormats", r.get("rechargeAccountFormats"), AccountFormat)]
        presale, uses = check_kind_fields(check, kind, presale_cap=r.get("presaleCap", 0),
                                          serial_uses=r.get("serialUses", 1), account_formats=formats)
        suppliers = check_suppliers(check, kind, currency, _supplier_lines(check, r.get("suppliers")), self._supplier_states)
        components = self._components(check, code, kind, currency, r.get("components"))
        pool = self._pool(check, code, kind, currency, r.get("pool"), stored)
        amount = (lambda m: str(m.amount) if m is not None else None)
        return {
            "type": "sku", "code": code, "product": product, "name": check.name("name", r.get("name")),
            "kind": kind.value, "currency": currency,
            "basePrice": amount(prices.base) if prices else None, "faceValue": amount(prices.face) if prices else None,
            "supplierCost": amount(prices.cost) if prices else None,
            "priceFloor": amount(prices.floor) if prices else None, "priceCeiling": amount(prices.ceiling) if prices else None,
            "presaleCap": presale, "serialUses": uses,
            "rechargeAccountFormats": [f.value for f in AccountFormat if f in formats],
            "components": sorted(components, key=lambda c: c["sku"]),
            "pool": pool,
            "suppliers": [{"supplier": s.supplier, "priority": s.priority, "productCode": s.product_code,
                           "cost": amount(s.cost)} for s in suppliers],
        }

    def _listing(self, check: Checker, key: str, r: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any]:
        channel, _, product = key.partition("/")
        self._reference(check, "channel", "channel", channel)
        self._reference(check, "product", "product", product)
        position = r.get("position")
        return {"type": "listing", "channel": channel, "product": product,
                "position": check.count("position", position, low=1, high=MAX_POSITION) if position is not None else None}

    # -- references ---------------------------------------------------------------------------

    def _reference(self, check: Checker, field_name: str, kind: str, value: Any) -> str:
        """The code of an object this record refers to, which must exist, unarchived, or be
        part of the same import."""
        code = check.code(field_name, value, KEY_KINDS[kind])
        if not code or (kind, code) in self.raw_index:
            return code
        row = getattr(self.state, _STATE_FIELD[kind]).get(code)
        if row is None:
            check.add(field_name, f"no {kind} {code!r}", "NOT_FOUND")
        elif row.archived_at is not None:
            check.add(field_name, f"the {kind} {code!r} is archived", "ARCHIVED")
        return code

    @cached_property
    def _supplier_states(self) -> Mapping[str, bool]:
        known = {code: row.archived_at is not None for code, row in self.state.suppliers.items()}
        known.update({code: False for kind, code in self.raw_index if kind == "supplier"})
        return known

    def _components(self, check: Checker, code: str, kind: SkuKind, currency: str, value: Any) -> list[dict[str, Any]]:
        parts: list[Component] = []
        for index, part in enumerate(value or []) if isinstance(value, list) else ():
            part = part if isinstance(part, dict) else {}
            sku = check.code(f"components.{index}.sku", part.get("sku"), CodeKind.SKU)
            parts.append(Component(sku, part.get("quantity", 1)))
        if value is not None and not isinstance(value, list):
            check.add("components", "a list of {sku, quantity}", "INVALID_VALUE")
        facts: dict[Hashable, ComponentFacts | None] = {}
        for part in parts:
            facts[part.sku] = self._facts(str(part.sku))
        check_components(check, code, kind, currency, parts, facts, self._contents)
        return [{"sku": str(p.sku), "quantity": p.quantity} for p in parts]

    def _pool(
        self, check: Checker, code: str, kind: SkuKind, currency: str, value: Any, stored: dict[str, Any] | None,
    ) -> list[dict[str, Any]]:
        """A blind box's items and weights, in the order it publishes them (the rules of
        services/draws/pool.py); once the stored box sold a unit they cannot change."""
        if value is None or value == []:
            items: list[dict[str, Any]] = []
            if stored is not None and stored["pool"]:
                check.add("pool", f"a box holds 1 to {MAX_POOL} SKUs", "INVALID_INPUT")
        elif not isinstance(value, list):
            check.add("pool", "a list of {sku, weight}", "INVALID_VALUE")
            return []
        elif kind is not SkuKind.BLIND_BOX:
            check.add("pool", "only a blind box has a pool", "INVALID_FOR_KIND")
            return []
        elif len(value) > MAX_POOL:
            check.add("pool", f"a box holds 1 to {MAX_POOL} SKUs", "INVALID_INPUT")
            return []
        else:
            items = [self._pool_item(check, index, currency, item) for index, item in enumerate(value)]
            seen: set[str] = set()
            for index, item in enumerate(items):
                if item["sku"] and item["sku"] in seen:
                    check.add(f"pool.{index}.sku", "each SKU once", "DUPLICATE")
                seen.add(item["sku"])
        if stored is not None and stored["pool"] != items and self.state.box_sold(code):
            check.add("pool", "the box has sold: its items and weights are frozen", "POOL_FROZEN")
        return items

    def _pool_item(self, check: Checker, index: int, currency: str, item: Any) -> dict[str, Any]:
        item = item if isinstance(item, dict) else {}
        sku = check.code(f"pool.{index}.sku", item.get("sku"), CodeKind.SKU)
        weight = item.get("weight")
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
            check.add(f"pool.{index}.weight", f"a weight is a whole number from 1 to {MAX_WEIGHT}", "INVALID_INPUT")
        facts = self._facts(sku) if sku else None
        if sku and facts is None:
            check.add(f"pool.{index}.sku", f"no sku {sku!r}", "NOT_FOUND")
        elif facts is not None and facts.archived:
            check.add(f"pool.{index}.sku", f"the sku {sku!r} is archived", "ARCHIVED")
        elif facts is not None and facts.kind not in _DRAWABLE:
            check.add(f"pool.{index}.sku", "a box holds codes, serials and top-ups", "INVALID_FOR_KIND")
        elif facts is not None and facts.currency != currency:
            check.add(f"pool.{index}.sku", f"the SKU is sold in {facts.currency}", "CURRENCY_MISMATCH")
        return {"sku": sku, "weight": weight}

    def _facts(self, code: str) -> ComponentFacts | None:
        incoming = self.raw_index.get(("sku", code))
        if incoming is not None:
            stored = self.state.skus.get(code)
            kind = incoming.get("kind", stored.kind.value if stored else None)
            currency = incoming.get("currency", stored.currency if stored else "CNY")
            kind = kind.strip().upper() if isinstance(kind, str) else None
            if kind not in SkuKind.__members__ or not isinstance(currency, str):
                return None
            return ComponentFacts(SkuKind[kind], currency.strip().upper(), archived=False)
        row = self.state.skus.get(code)
        return ComponentFacts(row.kind, row.currency, row.archived_at is not None) if row is not None else None

    @cached_property
    def _contents(self) -> dict[Hashable, list[Hashable]]:
        """What every bundle holds: as stored, unless this import says otherwise."""
        codes = self.state.sku_codes
        contents: dict[Hashable, list[Hashable]] = {
            codes[bundle]: [codes[c] for c, _ in parts] for bundle, parts in self.state.components.items()
        }
        for (kind, sku_code), record in self.raw_index.items():
            parts = record.get("components")
            if kind == "sku" and isinstance(parts, list):
                contents[sku_code] = [
                    fold_code(part["sku"], CodeKind.SKU) for part in parts
                    if isinstance(part, dict) and isinstance(part.get("sku"), str)
                ]
        return contents


# What a blind box may hold (services/draws/boxes.py DRAWABLE).
_DRAWABLE = (SkuKind.CARD_CODE, SkuKind.SERIAL, SkuKind.DIRECT_RECHARGE)

_STATE_FIELD = {"channel": "channels", "supplier": "suppliers", "brand": "brands", "category": "categories",
                "product": "products", "sku": "skus"}


def _choice(check: Checker, field_name: str, value: Any, enum_type: Any) -> str:
    names = [member.name for member in enum_type]
    text = value.strip().upper() if isinstance(value, str) else value
    if text not in names:
        check.add(field_name, f"one of {', '.join(names)}", "INVALID_VALUE")
        return ""
    return str(text)


def _choices(check: Checker, field_name: str, value: Any, enum_type: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        check.add(field_name, "a list", "INVALID_VALUE")
        return []
    chosen = [_choice(check, f"{field_name}.{i}", v, enum_type) for i, v in enumerate(value)]
    return [c for c in chosen if c]


def _flag(check: Checker, field_name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        check.add(field_name, "true or false", "INVALID_VALUE")
        return False
    return value


def _supplier_lines(check: Checker, value: Any) -> list[SupplierLine]:
    if value is None:
        return []
    if not isinstance(value, list):
        check.add("suppliers", "a list of {supplier, priority, productCode, cost}", "INVALID_VALUE")
        return []
    lines = []
    for line in value:
        line = line if isinstance(line, dict) else {}
        lines.append(SupplierLine(line.get("supplier"), line.get("priority"), line.get("productCode"), line.get("cost")))
    return lines

