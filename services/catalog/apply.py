"""Carrying out a plan in the caller's transaction, a batch of statements per record type.

Creations are multi-row INSERTs with RETURNING (SQLAlchemy sends them as pages of VALUES);
updates are one executemany UPDATE by id that also moves each row's version on; the
children of a SKU (components, suppliers) are replaced when they changed, and a blind box's
pool is set as `setBlindBoxPool` sets it (services/draws/pool.py: the first pool opens the
box's first round; a box that sold refuses a change, checked again under its round's lock). One creation or
update of the API is the same, for one record: its UPDATE names the version the operator
read, and finding none at it is a CONFLICT.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import SkuKind
from domain.catalog_input import Checker, Problem, refused
from domain.channel_rules import commission_bp
from domain.money import Money
from domain.recharge_accounts import AccountFormat, store_formats
from models import (
    Brand,
    BundleItem,
    CatalogChange,
    Category,
    Channel,
    ChannelKind,
    Listing,
    Product,
    SettlementCycle,
    Sku,
    SkuSupplier,
    StockLevel,
    Supplier,
)
from services.catalog.plan import Action, Plan, Step
from services.core.database import rows_changed
from services.core.secret_box import SecretBox
from services.draws.pool import PoolItem, set_pool

_MODELS: dict[str, Any] = {"channel": Channel, "supplier": Supplier, "brand": Brand, "category": Category,
                           "product": Product, "sku": Sku}
_KEY_COLUMN = {"product": "slug"}
# Rows per statement: large enough to be fast, small enough to report progress often.
BATCH = 1_000


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), BATCH):
        yield items[start:start + BATCH]


class RecordRefused(Exception):
    """A record found invalid only as it was written (a box that sold since the plan was
    read): the caller rolls back, and reports the problem as the record's."""

    def __init__(self, index: int, problem: Problem) -> None:
        super().__init__(f"{problem.field}: {problem.message}")
        self.index, self.problem = index, problem


@dataclass
class Applied:
    """The ids each record type's steps created or changed, by key."""

    ids: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    # SKUs whose stock figures may read differently now (new, presale cap, components).
    stock_skus: set[int] = field(default_factory=set)
    suppliers_changed: bool = False


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _fen(amount: str | None, currency: str) -> int | None:
    return None if amount is None else Money.of(amount, currency).minor


class _Writer:
    def __init__(self, session: AsyncSession, plan: Plan, *, actor: str, at: datetime, version: int | None,
                 progress: Callable[[int], None] | None, seeds: SecretBox | None) -> None:
        self.session, self.plan, self.state = session, plan, plan.state
        self.seeds = seeds
        self.actor, self.at, self.version = actor, at, version
        self.applied = Applied()
        self.changes: list[dict[str, Any]] = []
        self._progress = progress
        self._done = 0

    def _advanced(self, steps: int) -> None:
        self._done += steps
        if self._progress is not None:
            self._progress(self._done)

    # -- references by code, to stored rows or rows this plan created -----------------------

    def id_of(self, kind: str, key: str) -> int:
        if key in self.applied.ids[kind]:
            return self.applied.ids[kind][key]
        store = {"channel": self.state.channels, "supplier": self.state.suppliers, "brand": self.state.brands,
                 "category": self.state.categories, "product": self.state.products, "sku": self.state.skus}[kind]
        return int(store[key].id)

    # -- values of a row from its record ----------------------------------------------------

    def values(self, kind: str, r: dict[str, Any]) -> dict[str, Any]:
        if kind == "channel":
            return {"code": r["code"], "name": r["name"], "kind": ChannelKind[r["kind"]], "currency": r["currency"],
                    "commission_bp": commission_bp(Checker(), Decimal(r["commissionRate"])),
                    "settlement_cycle": SettlementCycle[r["settlementCycle"]],
                    "settlement_time_zone": r["settlementTimeZone"], "public": r["public"], "active": r["active"]}
        if kind == "supplier":
            return {"code": r["code"], "name": r["name"], "active": r["active"]}
        if kind in ("brand", "category"):
            return {"code": r["code"], "name": r["name"]}
        if kind == "product":
            return {"slug": r["slug"], "name": r["name"], "brand_id": self.id_of("brand", r["brand"]),
                    "category_id": self.id_of("category", r["category"]), "description": r["description"],
                    "image_urls": r["imageUrls"], "attributes": r["attributes"]}
        currency = r["currency"]
        return {
            "product_id": self.id_of("product", r["product"]), "code": r["code"], "name": r["name"],
            "kind": SkuKind[r["kind"]], "currency": currency,
            "base_price_fen": _fen(r["basePrice"], currency), "face_value_fen": _fen(r["faceValue"], currency),
            "supplier_cost_fen": _fen(r["supplierCost"], currency),
            "price_floor_fen": _fen(r["priceFloor"], currency), "price_ceiling_fen": _fen(r["priceCeiling"], currency),
            "presale_cap": r["presaleCap"], "serial_uses": r["serialUses"],
            "account_formats": store_formats(AccountFormat[f] for f in r["rechargeAccountFormats"]),
        }

    # -- writing ------------------------------------------------------------------------------

    async def write(self) -> Applied:
        by_kind: dict[str, list[Step]] = defaultdict(list)
        for step in self.plan.steps:
            if step.action is not Action.UNCHANGED:
                by_kind[step.kind].append(step)
        for kind in ("channel", "supplier", "brand", "category", "product", "sku"):
            await self._objects(kind, by_kind[kind])
        await self._sku_children(by_kind["sku"])
        await self._pools(by_kind["sku"])
        await self._listings(by_kind["listing"])
        for batch in _batches(self.changes):
            await self.session.execute(insert(CatalogChange), list(batch))
        self.applied.suppliers_changed = bool(by_kind["supplier"])
        return self.applied

    async def _objects(self, kind: str, steps: list[Step]) -> None:
        table = _table(_MODELS[kind])
        key_column = _KEY_COLUMN.get(kind, "code")
        creates = [s for s in steps if s.action is Action.CREATE]
        updates = [s for s in steps if s.action is Action.UPDATE]
        extra = {"product": {"active": True, "created_at": self.at}, "sku": {"active": True}}.get(kind, {})
        for batch in _batches(creates):
            rows = [{**self.values(kind, s.after), **extra} for s in batch]
            returned = await self.session.execute(insert(table).returning(table.c.id, table.c[key_column]), rows)
            for pk, key in returned:
                self.applied.ids[kind][key] = pk
            self._advanced(len(batch))
        for step in updates:
            self.applied.ids[kind][step.key] = self.id_of(kind, step.key)
        if len(updates) == 1 and self.version is not None:
            # One object of the API: the UPDATE is conditional on the version the operator read.
            step = updates[0]
            result = await self.session.execute(
                update(table)
                .where(table.c.id == self.id_of(kind, step.key), table.c.version == self.version)
                .values(**self.values(kind, step.after), version=table.c.version + 1)
            )
            if rows_changed(result) != 1:
                raise refused("version", "changed since it was read: read it again and repeat the change", "CONFLICT")
        else:
            # An import: its rows were read FOR UPDATE in this transaction, nobody moved them since.
            # The SET clause is every column of the parameter sets, and the version moves on.
            for batch in _batches(updates):
                params = [{"_id": self.id_of(kind, s.key), **self.values(kind, s.after)} for s in batch]
                await self.session.execute(
                    update(table).where(table.c.id == bindparam("_id")).values(version=table.c.version + 1), params
                )
                self._advanced(len(batch))
        for step in creates + updates:
            self._log(step, kind.upper(), self.id_of(kind, step.key), "CREATED" if step.action is Action.CREATE else "UPDATED")
        if kind == "sku":
            for step in creates + updates:
                if step.action is Action.CREATE or {"presaleCap", "components"} & set(step.changed):
                    self.applied.stock_skus.add(self.id_of("sku", step.key))

    async def _sku_children(self, steps: list[Step]) -> None:
        """Components and suppliers of the SKUs whose lists changed (or that are new)."""
        components = [s for s in steps if s.action is Action.CREATE or "components" in s.changed]
        suppliers = [s for s in steps if s.action is Action.CREATE or "suppliers" in s.changed]
        if components:
            ids = [self.id_of("sku", s.key) for s in components]
            await self.session.execute(delete(BundleItem).where(BundleItem.bundle_sku_id.in_(ids)))
            rows = [{"bundle_sku_id": self.id_of("sku", s.key), "component_sku_id": self.id_of("sku", part["sku"]),
                     "quantity": part["quantity"]} for s in components for part in s.after["components"]]
            if rows:
                await self.session.execute(insert(BundleItem), rows)
        if suppliers:
            ids = [self.id_of("sku", s.key) for s in suppliers]
            await self.session.execute(delete(SkuSupplier).where(SkuSupplier.sku_id.in_(ids)))
            rows = [{"sku_id": self.id_of("sku", s.key), "supplier_id": self.id_of("supplier", line["supplier"]),
                     "priority": line["priority"], "product_code": line["productCode"],
                     "cost_fen": _fen(line["cost"], s.after["currency"])}
                    for s in suppliers for line in s.after["suppliers"]]
            if rows:
                await self.session.execute(insert(SkuSupplier), rows)
        # One empty slot: setting the stock (counters.set_on_hand) spreads it over the SKU's slots.
        counters = [{"sku_id": self.id_of("sku", s.key), "slot": 0, "on_hand": 0, "reserved": 0}
                    for s in steps if s.action is Action.CREATE and s.after["kind"] == SkuKind.DIRECT_RECHARGE.value]
        if counters:
            await self.session.execute(insert(StockLevel), counters)

    async def _pools(self, steps: list[Step]) -> None:
        """The pools of the boxes whose pool changed (or new boxes given one)."""
        for step in steps:
            if "pool" not in step.changed:
                continue
            if self.seeds is None:
                raise ValueError("setting a blind box's pool opens a round: pass the seeds' SecretBox")
            box_id = self.id_of("sku", step.key)
            items = [PoolItem(self.id_of("sku", item["sku"]), item["weight"]) for item in step.after["pool"]]
            refusal = await set_pool(self.session, self.seeds, box_id, items, self.at)
            if refusal is not None:
                # A unit sold since the plan was read: the whole import is refused.
                where = (refusal.field or "items").removeprefix("items").replace("skuId", "sku")
                raise RecordRefused(step.index, Problem(f"pool{where}", refusal.message, refusal.code))
            self.applied.stock_skus.add(box_id)

    async def _listings(self, steps: list[Step]) -> None:
        if not steps:
            return
        # A listing without a position goes to the end of its channel's catalog.
        last: dict[int, int] = {}
        channels = sorted({self.id_of("channel", s.after["channel"]) for s in steps})
        for channel_id, position in await self.session.execute(
            select(Listing.channel_id, func.max(Listing.position)).where(Listing.channel_id.in_(channels))
            .group_by(Listing.channel_id)
        ):
            last[channel_id] = int(position or 0)
        creates, moves = [], []
        for step in steps:
            channel_id = self.id_of("channel", step.after["channel"])
            product_id = self.id_of("product", step.after["product"])
            if step.after["position"] is None:
                last[channel_id] = last.get(channel_id, 0) + 1
                step.after["position"] = last[channel_id]
            row = {"channel_id": channel_id, "product_id": product_id, "position": step.after["position"]}
            (creates if step.action is Action.CREATE else moves).append(row)
            action = "LISTED" if step.action is Action.CREATE else "UPDATED"
            self._log(step, "LISTING", product_id, action)
        if creates:
            for batch in _batches(creates):
                await self.session.execute(insert(Listing), [{**row, "listed_at": self.at} for row in batch])
                self._advanced(len(batch))
        if moves:
            table = _table(Listing)
            await self.session.execute(
                update(table).where(table.c.channel_id == bindparam("_channel"), table.c.product_id == bindparam("_product")),
                [{"_channel": r["channel_id"], "_product": r["product_id"], "position": r["position"]} for r in moves],
            )
            self._advanced(len(moves))

    def _log(self, step: Step, entity: str, entity_id: int, action: str) -> None:
        self.changes.append({
            "entity": entity, "entity_id": entity_id, "code": step.key, "action": action, "actor": self.actor,
            "before": step.before, "after": step.after, "at": self.at,
        })


async def apply_plan(
    session: AsyncSession, plan: Plan, *, actor: str, at: datetime, version: int | None = None,
    progress: Callable[[int], None] | None = None, seeds: SecretBox | None = None,
) -> Applied:
    """Write a valid plan; `version`: the one object's update is conditional on it;
    `progress` hears how many of the plan's changes are written, batch by batch; `seeds`
    seal the seed of a box's first round, needed when the plan sets a box's pool."""
    if not plan.ok:
        raise ValueError("an invalid plan is never applied")
    return await _Writer(session, plan, actor=actor, at=at, version=version, progress=progress, seeds=seeds).write()
