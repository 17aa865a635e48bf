"""What makes a SKU sellable as described: its prices, kind-specific fields, bundle
components and suppliers. Pure: the services hand in what they read, problems come back
on the `Checker`, each naming its field.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.catalog import SkuKind
from domain.catalog_input import Checker, CodeKind
from domain.money import Money
from domain.pricing import PriceBounds, PriceViolation, check_bounds, check_price
from domain.recharge_accounts import AccountFormat

MAX_PRESALE = 1_000_000
MAX_SERIAL_USES = 10_000
MAX_COMPONENTS = 20
MAX_COMPONENT_QUANTITY = 100
MAX_SUPPLIERS = 10
MAX_PRODUCT_CODE = 64

_PRICE_MESSAGES = {
    PriceViolation.BELOW_PRICE_FLOOR: ("the price is below the SKU's price floor", "basePrice"),
    PriceViolation.ABOVE_PRICE_CEILING: ("the price is above the SKU's price ceiling", "basePrice"),
    PriceViolation.NOT_POSITIVE: ("a price is more than zero", "basePrice"),
    PriceViolation.CURRENCY_MISMATCH: ("the price control is set in another currency", "priceFloor"),
    PriceViolation.INVERTED_BOUNDS: ("the floor must not be above the ceiling", "priceFloor"),
}


@dataclass(frozen=True, slots=True)
class Prices:
    base: Money
    face: Money
    cost: Money
    floor: Money | None
    ceiling: Money | None


def check_prices(
    check: Checker, currency: str, *, base: Any, face: Any, cost: Any, floor: Any = None, ceiling: Any = None,
) -> Prices | None:
    """The SKU's amounts in its currency; the base price within its floor and ceiling (控价).

    A face value left out is the base price; a supplier cost left out is zero.
    """
    before = len(check.problems)
    base_money = check.money("basePrice", base, currency, positive=True)
    face_money = check.money("faceValue", face, currency)
    cost_money = check.money("supplierCost", cost, currency)
    floor_money = check.money("priceFloor", floor, currency, positive=True)
    ceiling_money = check.money("priceCeiling", ceiling, currency, positive=True)
    if len(check.problems) > before or base_money is None:
        return None
    bounds = PriceBounds(floor=floor_money, ceiling=ceiling_money)
    violation = check_bounds(bounds) or check_price(base_money, bounds)
    if violation is not None:
        message, field = _PRICE_MESSAGES[violation]
        check.add(field, message, violation.value)
        return None
    zero = Money(0, currency)
    return Prices(base_money, face_money or base_money, cost_money or zero, floor_money, ceiling_money)


def check_kind_fields(
    check: Checker, kind: SkuKind, *, presale_cap: Any, serial_uses: Any, account_formats: Sequence[AccountFormat],
) -> tuple[int, int]:
    """Presale cap and serial uses, each only where the kind has a use for it."""
    cap = check.count("presaleCap", presale_cap, low=0, high=MAX_PRESALE)
    if cap and not kind.is_code_backed:
        check.add("presaleCap", "only code SKUs (CARD_CODE, SERIAL) take presale orders", "INVALID_FOR_KIND")
    uses = check.count("serialUses", serial_uses, low=1, high=MAX_SERIAL_USES)
    if uses > 1 and kind is not SkuKind.SERIAL:
        check.add("serialUses", "only a SERIAL has more than one use", "INVALID_FOR_KIND")
    if account_formats and kind is not SkuKind.DIRECT_RECHARGE:
        check.add("rechargeAccountFormats", "only a DIRECT_RECHARGE SKU takes a recharge account", "INVALID_FOR_KIND")
    return cap, uses


@dataclass(frozen=True, slots=True)
class Component:
    """One line of a bundle as asked for: a SKU (by id or code) and how many of it."""

    sku: Hashable
    quantity: int


@dataclass(frozen=True, slots=True)
class ComponentFacts:
    """What the catalog knows of a component SKU."""

    kind: SkuKind
    currency: str
    archived: bool


def contains_itself(bundle: Hashable, parts: Iterable[Hashable], contents: Mapping[Hashable, Iterable[Hashable]]) -> bool:
    """Whether `bundle` holding `parts` would hold itself, directly or through other bundles.

    `contents` is what every other bundle holds now (the bundle's own entry is ignored).
    """
    seen: set[Hashable] = set()
    todo = list(parts)
    while todo:
        sku = todo.pop()
        if sku == bundle:
            return True
        if sku in seen:
            continue
        seen.add(sku)
        todo.extend(contents.get(sku, ()))
    return False


def check_components(
    check: Checker, bundle: Hashable, kind: SkuKind, currency: str, components: Sequence[Component],
    facts: Mapping[Hashable, ComponentFacts | None], contents: Mapping[Hashable, Iterable[Hashable]],
) -> None:
    """A BUNDLE holds 1 to 20 other SKUs of its currency, none of them a bundle or archived,
    each once; other kinds hold nothing. A bundle never holds itself, however indirectly."""
    if kind is not SkuKind.BUNDLE:
        if components:
            check.add("components", "only a BUNDLE has components", "INVALID_FOR_KIND")
        return
    if not components:
        check.add("components", "a bundle holds at least one SKU", "REQUIRED")
        return
    if len(components) > MAX_COMPONENTS:
        check.add("components", f"a bundle holds at most {MAX_COMPONENTS} SKUs", "TOO_MANY")
        return
    if contains_itself(bundle, [c.sku for c in components], contents):
        check.add("components", "a bundle cannot contain itself, directly or through another bundle", "BUNDLE_CYCLE")
        return
    seen: set[Hashable] = set()
    for index, component in enumerate(components):
        where = f"components.{index}"
        check.count(f"{where}.quantity", component.quantity, low=1, high=MAX_COMPONENT_QUANTITY)
        if component.sku in seen:
            check.add(f"{where}.skuId", "each SKU once; give its quantity instead", "DUPLICATE")
            continue
        seen.add(component.sku)
        found = facts.get(component.sku)
        if found is None:
            check.add(f"{where}.skuId", "no such SKU", "NOT_FOUND")
        elif found.archived:
            check.add(f"{where}.skuId", "the SKU is archived", "ARCHIVED")
        elif found.kind is SkuKind.BUNDLE:
            check.add(f"{where}.skuId", "a bundle holds SKUs, not other bundles", "NESTED_BUNDLE")
        elif found.currency != currency:
            check.add(f"{where}.skuId", f"the SKU is sold in {found.currency}, the bundle in {currency}", "CURRENCY_MISMATCH")


@dataclass(frozen=True, slots=True)
class SupplierLine:
    """One supplier of a SKU as asked for: its code, place, own product code and cost."""

    supplier: str
    priority: int | None = None
    product_code: str | None = None
    cost: Any = None


@dataclass(frozen=True, slots=True)
class CleanSupplierLine:
    supplier: str
    priority: int
    product_code: str | None
    cost: Money | None


def check_suppliers(
    check: Checker, kind: SkuKind, currency: str, lines: Sequence[SupplierLine], known: Mapping[str, bool],
) -> list[CleanSupplierLine]:
    """Suppliers in priority order (their list order when no priority is given), each once.

    `known` maps the codes of existing suppliers to whether they are archived.
    """
    if kind in (SkuKind.BUNDLE, SkuKind.BLIND_BOX) and lines:
        check.add("suppliers", "a bundle or blind box is fulfilled by its items' suppliers", "INVALID_FOR_KIND")
        return []
    if len(lines) > MAX_SUPPLIERS:
        check.add("suppliers", f"at most {MAX_SUPPLIERS} suppliers", "TOO_MANY")
        return []
    clean: list[CleanSupplierLine] = []
    for index, line in enumerate(lines):
        where = f"suppliers.{index}"
        code = check.code(f"{where}.supplier", line.supplier, CodeKind.CODE)
        if code and code not in known:
            check.add(f"{where}.supplier", "no such supplier", "NOT_FOUND")
        elif code and known[code]:
            check.add(f"{where}.supplier", "the supplier is archived", "ARCHIVED")
        priority = index + 1 if line.priority is None else check.count(f"{where}.priority", line.priority, low=1, high=100)
        product_code = None
        if line.product_code is not None:
            product_code = line.product_code.strip() if isinstance(line.product_code, str) else ""
            if not 1 <= len(product_code) <= MAX_PRODUCT_CODE or not product_code.isascii() or not product_code.isprintable() or " " in product_code:
                check.add(f"{where}.productCode", f"1 to {MAX_PRODUCT_CODE} printable ASCII characters, no spaces", "INVALID_CODE")
        cost = check.money(f"{where}.cost", line.cost, currency)
        clean.append(CleanSupplierLine(code, priority, product_code, cost))
    codes = [line.supplier for line in clean]
    if len(set(codes)) != len(codes):
        check.add("suppliers", "each supplier once", "DUPLICATE")
    priorities = [line.priority for line in clean]
    if len(set(priorities)) != len(priorities):
        check.add("suppliers", "each priority once", "DUPLICATE")
    return sorted(clean, key=lambda line: line.priority)
