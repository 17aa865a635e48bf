"""What a set of records would do to the catalog: create, update or leave alone each object,
or, if any record is invalid, nothing at all, with every invalid record's reasons.

The same plan serves an import's dry run (reported), a real import and the bulk mutation
(applied by services/catalog/apply.py), and the one-object commands of the API (a plan of
one record, in CREATE or UPDATE mode, the update conditional on the version it names).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog_input import Checker, Problem, fold_code
from services.catalog.cleaning import Cleaner
from services.catalog.records import TYPES
from services.catalog.state import KEY_KINDS, CatalogState


class Action(enum.Enum):
    CREATE = "CREATE"
    UPDATE = "UPDATE"
    UNCHANGED = "UNCHANGED"


class Mode(enum.Enum):
    UPSERT = "UPSERT"  # imports: create or update by code
    CREATE = "CREATE"  # create*: an existing code is a DUPLICATE
    UPDATE = "UPDATE"  # update*: the object must exist, at the version named


@dataclass
class Step:
    index: int  # the record's place in the input (0-based)
    kind: str
    key: str
    action: Action
    before: dict[str, Any] | None
    after: dict[str, Any]

    @property
    def changed(self) -> list[str]:
        """The fields this step changes; for a creation, those it gives a value."""
        if self.before is None:
            return [name for name, value in self.after.items() if name != "type" and value not in (None, "", [], {})]
        return [name for name, value in self.after.items() if name != "type" and self.before.get(name) != value]


@dataclass
class Plan:
    state: CatalogState
    steps: list[Step] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # Records with at least one problem, by input index.
    invalid: dict[int, list[Problem]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, action: Action) -> int:
        return sum(1 for step in self.steps if step.action is action)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per record type, how many would be created, updated, left unchanged."""
        table = {kind: {a.value: 0 for a in Action} for kind in TYPES}
        for step in self.steps:
            table[step.kind][step.action.value] += 1
        return {kind: counts for kind, counts in table.items() if any(counts.values())}


def at_index(index: int) -> str:
    return f"records.{index}."


async def make_plan(
    session: AsyncSession, raw: Sequence[dict[str, Any]], *, lock: bool = False, mode: Mode = Mode.UPSERT,
    version: int | None = None, prefix: Callable[[int], str] = at_index,
) -> Plan:
    """Plan `raw`, read with `session` (`lock`: FOR UPDATE on the rows the records name)."""
    state = await CatalogState.of_records(session, raw, lock=lock)
    plan = Plan(state)
    cleaner = Cleaner(state, raw_index=_raw_index(raw))
    keyed: list[tuple[int, str, str, Checker]] = []
    first_of: dict[tuple[str, str], int] = {}
    for index, record in enumerate(raw):
        check = Checker(prefix(index))
        found = cleaner.key(check, record) if isinstance(record, dict) else None
        if not isinstance(record, dict):
            check.add("type", "a record is an object", "INVALID_RECORD")
        if found is not None:
            kind, key = found
            if (kind, key) in first_of:
                check.add(_key_field(kind), f"the same {kind} as record {first_of[(kind, key)] + 1}", "DUPLICATE_RECORD")
            else:
                first_of[(kind, key)] = index
                _check_mode(check, state, kind, key, mode, version)
                keyed.append((index, kind, key, check))
        _note(plan, index, check)
    # Type by type, so a product's brand created by the same import is known when it is read.
    keyed.sort(key=lambda item: (TYPES.index(item[1]), item[0]))
    for index, kind, key, check in keyed:
        if index in plan.invalid:
            continue
        record = cleaner.clean(check, kind, key, raw[index])
        _note(plan, index, check)
        if record is None:
            continue
        cleaner.cleaned.by_type[kind][key] = record
        before = state.record_of(kind, key)
        action = Action.CREATE if before is None else Action.UNCHANGED if before == record else Action.UPDATE
        plan.steps.append(Step(index, kind, key, action, before, record))
    plan.steps.sort(key=lambda step: (TYPES.index(step.kind), step.index))
    return plan


def _note(plan: Plan, index: int, check: Checker) -> None:
    if check.problems:
        plan.invalid.setdefault(index, []).extend(check.problems)
        plan.problems.extend(check.problems)
        check.problems = []


def _check_mode(check: Checker, state: CatalogState, kind: str, key: str, mode: Mode, version: int | None) -> None:
    row = _stored_row(state, kind, key)
    if row is not None and getattr(row, "archived_at", None) is not None:
        check.add(_key_field(kind), f"the {kind} {key!r} is archived", "ARCHIVED")
    elif mode is Mode.CREATE and row is not None:
        check.add(_key_field(kind), f"a {kind} {key!r} exists already", "DUPLICATE")
    elif mode is Mode.UPDATE and row is None:
        check.add("id", f"no {kind} {key!r}", "NOT_FOUND")
    elif mode is Mode.UPDATE and version is not None and getattr(row, "version", version) != version:
        check.add("version", "changed since it was read: read it again and repeat the change", "CONFLICT")


def _stored_row(state: CatalogState, kind: str, key: str) -> Any:
    if kind == "listing":
        return None
    return getattr(state, {"channel": "channels", "supplier": "suppliers", "brand": "brands",
                           "category": "categories", "product": "products", "sku": "skus"}[kind]).get(key)


def _key_field(kind: str) -> str:
    return {"product": "slug", "listing": "product"}.get(kind, "code")


def _raw_index(raw: Sequence[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """The records by (type, key) in their one spelling, for references within the import."""
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for record in raw:
        if not isinstance(record, dict) or not isinstance(record.get("type"), str) or record["type"] not in KEY_KINDS:
            continue
        kind = record["type"]
        value = record.get("slug" if kind == "product" else "code")
        key = fold_code(value, KEY_KINDS[kind]) if isinstance(value, str) else None
        if key:
            index.setdefault((kind, key), record)
    return index

