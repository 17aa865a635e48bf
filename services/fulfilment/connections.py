"""Which suppliers a top-up can reach, and which SKUs on sale have none it can.

A direct top-up is sent to the first of its SKU's suppliers whose connection is usable
(services/fulfilment/supplier_registry.py); a SKU none of whose suppliers is usable cannot
deliver what it sells, and its paid top-ups wait for an operator (services/fulfilment/
topups.py). This is said at start-up (the log), in /readyz and in /metrics, so it is found
before a buyer pays, not after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import SkuKind
from models import Product, Sku, SkuSupplier, Supplier, TopUpTask
from services.fulfilment.supplier_registry import SupplierRegistry

NEW = "NEW"  # services/fulfilment/topups.py


@dataclass(frozen=True, slots=True)
class StrandedSku:
    """A top-up SKU on sale none of whose suppliers can be reached."""

    code: str
    suppliers: tuple[tuple[str, str], ...]  # (supplier code, why it cannot be reached), in priority order


@dataclass(frozen=True, slots=True)
class Connections:
    suppliers: dict[str, str | None] = field(default_factory=dict)  # active supplier code -> problem, None if usable
    stranded: tuple[StrandedSku, ...] = ()

    @property
    def unusable(self) -> dict[str, str]:
        return {code: problem for code, problem in self.suppliers.items() if problem is not None}


async def check(session: AsyncSession, registry: SupplierRegistry) -> Connections:
    """Every active supplier's connection, and the direct top-up SKUs on sale left without one."""
    rows = list(await session.scalars(
        select(Supplier).where(Supplier.active.is_(True), Supplier.archived_at.is_(None)).order_by(Supplier.code)
    ))
    problems = {row.id: await registry.problem(row) for row in rows}
    codes = {row.id: row.code for row in rows}
    named: dict[str, list[int]] = {}
    for sku_code, supplier_id in await session.execute(
        select(Sku.code, SkuSupplier.supplier_id)
        .join(Product, Product.id == Sku.product_id)
        .outerjoin(SkuSupplier, SkuSupplier.sku_id == Sku.id)
        .where(Sku.kind == SkuKind.DIRECT_RECHARGE, Sku.active.is_(True), Product.active.is_(True))
        .order_by(Sku.code, SkuSupplier.priority)
    ):
        named.setdefault(sku_code, [])
        if supplier_id is not None:
            named[sku_code].append(supplier_id)
    stranded = tuple(
        StrandedSku(code, tuple((codes.get(i, f"#{i}"), problems.get(i) or "archived or inactive") for i in ids))
        for code, ids in named.items()
        if not any(i in problems and problems[i] is None for i in ids)
    )
    return Connections({row.code: problems[row.id] for row in rows}, stranded)


async def waiting_topups(session: AsyncSession) -> tuple[int, datetime | None]:
    """Paid top-ups waiting for a supplier they can reach, and since when the longest has."""
    count, oldest = (await session.execute(
        select(func.count(), func.min(TopUpTask.waiting_since))
        .where(TopUpTask.waiting_since.is_not(None), TopUpTask.status == NEW)
    )).one()
    return int(count), oldest


def describe(stranded: StrandedSku) -> str:
    """One log line's worth: the SKU and why each of its suppliers cannot be reached."""
    reasons = "; ".join(f"{code}: {problem}" for code, problem in stranded.suppliers) or "it has no supplier"
    return f"SKU {stranded.code} cannot deliver top-ups: no supplier with a usable connection ({reasons})"
