"""One catalog object created or changed by an operator, and imports of many.

Each runs in the caller's unit of work: the plan is read and written in its transaction,
and the events that make every process follow the change (catalog caches, stock feeds,
supplier adapters) are published once it commits. A refused command raises CatalogRefused
with every problem; the unit of work then rolls back and nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select

from domain.catalog_input import CatalogRefused, Problem, refused
from models import Brand, Category, Channel, Product, Sku, Supplier
from services.catalog.apply import Applied, RecordRefused, apply_plan
from services.catalog.plan import Mode, Plan, at_index, make_plan
from services.core.events import CATALOG_CHANGED, SUPPLIERS_CHANGED, stock_event
from services.core.secret_box import SecretBox
from services.core.unit_of_work import UnitOfWork

MAX_BULK = 100
# The first key of the PostgreSQL advisory lock catalog imports share.
_IMPORT_LOCK = 0x5159_0002

MODELS: dict[str, Any] = {"channel": Channel, "supplier": Supplier, "brand": Brand, "category": Category,
                          "product": Product, "sku": Sku}


def announce(uow: UnitOfWork, applied: Applied) -> None:
    """Queue the events of a change; the unit of work sends them after it commits."""
    uow.publish(CATALOG_CHANGED, b"catalog")
    stock_event(uow, applied.stock_skus)
    if applied.suppliers_changed:
        uow.publish(SUPPLIERS_CHANGED, b"")


def _no_prefix(_: int) -> str:
    return ""


@dataclass(frozen=True, slots=True)
class Saved:
    id: int
    changed: bool  # False: the object already was as asked, its version did not move


async def create(uow: UnitOfWork, record: dict[str, Any], *, actor: str, at: datetime) -> Saved:
    """Create the object `record` describes."""
    plan = await make_plan(uow.session, [record], mode=Mode.CREATE, prefix=_no_prefix)
    return await _carry_out(uow, plan, actor=actor, at=at)


async def update(
    uow: UnitOfWork, kind: str, pk: int, version: int, changes: dict[str, Any], *, actor: str, at: datetime,
) -> Saved:
    """Change the fields in `changes` of object `pk`, if it is still at `version`."""
    row = await uow.session.get(MODELS[kind], pk)
    if row is None:
        raise refused("id", f"no such {kind}", "NOT_FOUND")
    key_field = "slug" if kind == "product" else "code"
    record = {"type": kind, **changes, key_field: getattr(row, key_field)}
    plan = await make_plan(uow.session, [record], mode=Mode.UPDATE, version=version, prefix=_no_prefix)
    return await _carry_out(uow, plan, actor=actor, at=at, version=version)


async def _carry_out(uow: UnitOfWork, plan: Plan, *, actor: str, at: datetime, version: int | None = None) -> Saved:
    if not plan.ok:
        raise CatalogRefused(plan.problems)
    step = plan.steps[0]
    applied = await apply_plan(uow.session, plan, actor=actor, at=at, version=version)
    if step.action.value != "UNCHANGED":
        announce(uow, applied)
        return Saved(applied.ids[step.kind][step.key], changed=True)
    stored = getattr(plan.state, {"channel": "channels", "supplier": "suppliers", "brand": "brands",
                                  "category": "categories", "product": "products", "sku": "skus"}[step.kind])
    return Saved(int(stored[step.key].id), changed=False)


@dataclass
class Imported:
    plan: Plan
    applied: bool


class Progress(Protocol):
    def start(self, total: int, done: int) -> None: ...
    def update(self, done: int) -> None: ...
    def close(self) -> None: ...


async def import_records(
    uow: UnitOfWork, records: Sequence[dict[str, Any]], *, dry_run: bool, actor: str, at: datetime,
    prefix: Callable[[int], str] = at_index, progress: Progress | None = None, seeds: SecretBox | None = None,
) -> Imported:
    """Create or update by code. All or nothing: any invalid record and nothing is written;
    a dry run reports what would change and writes nothing either."""
    if not dry_run and uow.session.get_bind().dialect.name == "postgresql":
        # Imports take turns: two would lock the same rows in different orders.
        await uow.session.execute(select(func.pg_advisory_xact_lock(_IMPORT_LOCK)))
    plan = await make_plan(uow.session, records, lock=not dry_run, prefix=prefix)
    if dry_run or not plan.ok:
        await uow.rollback()
        return Imported(plan, applied=False)
    if progress is not None:
        progress.start(sum(1 for step in plan.steps if step.action.value != "UNCHANGED"), 0)
    try:
        applied = await apply_plan(uow.session, plan, actor=actor, at=at, seeds=seeds,
                                   progress=progress.update if progress is not None else None)
    except RecordRefused as refusal:
        await uow.rollback()
        problem = Problem(prefix(refusal.index) + refusal.problem.field, refusal.problem.message, refusal.problem.code)
        plan.invalid.setdefault(refusal.index, []).append(problem)
        plan.problems.append(problem)
        return Imported(plan, applied=False)
    finally:
        if progress is not None:
            progress.close()
    if any(step.action.value != "UNCHANGED" for step in plan.steps):
        announce(uow, applied)
    return Imported(plan, applied=True)


async def codes_of(uow: UnitOfWork, kind: str, ids: Sequence[int]) -> dict[int, str]:
    """The codes (slugs for products) of objects by id; unknown ids are left out."""
    model = MODELS[kind]
    column = model.slug if kind == "product" else model.code
    if not ids:
        return {}
    return {pk: code for pk, code in await uow.session.execute(select(model.id, column).where(model.id.in_(ids)))}

