"""`quanyi import-catalog FILE`: a catalog file in, all or nothing, in one transaction.

Every line is read and checked before anything is written: a file with any invalid line
imports nothing and reports each one with its reasons. A dry run reports what would be
created and updated (and each changed field). A real import writes in batched statements,
reporting progress, then sums up what it did; the same file again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from broker import Broker
from services.catalog import catalog_file
from services.catalog.commands import Progress, import_records
from services.catalog.plan import Action, Plan
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.core.unit_of_work import UnitOfWork

ACTOR = "cli:import-catalog"


@dataclass
class Outcome:
    lines: int  # records read
    applied: bool
    invalid: list[str] = field(default_factory=list)  # "line N: field: message (CODE)", in line order
    changes: list[str] = field(default_factory=list)  # "line N: create sku X" (dry runs)
    plan: Plan | None = None


async def import_file(
    db: Database, broker: Broker, path: Path, *, dry_run: bool, progress: Progress | None = None,
    seeds: SecretBox | None = None,
) -> Outcome:
    """Raises catalog_file.UnusableFile when the file cannot be read as a catalog at all;
    `seeds`: for the first round of a box whose pool the file sets."""
    lines = catalog_file.read(path)
    records = [line for line in lines if line.record is not None]
    numbers = [line.number for line in records]
    invalid = [(line.number, f"line {line.number}: {line.error}") for line in lines if line.error is not None]
    async with UnitOfWork(db, broker) as uow:
        done = await import_records(
            uow, [line.record for line in records if line.record is not None], dry_run=dry_run or bool(invalid),
            actor=ACTOR, at=datetime.now(UTC), prefix=lambda _: "", progress=progress, seeds=seeds,
        )
    plan = done.plan
    for index, problems in plan.invalid.items():
        for problem in problems:
            where = f"{problem.field}: " if problem.field else ""
            invalid.append((numbers[index], f"line {numbers[index]}: {where}{problem.message} ({problem.code})"))
    invalid.sort(key=lambda item: item[0])
    changes = [
        f"line {numbers[s.index]}: {s.action.value.lower()} {s.kind} {s.key}"
        + (f" ({', '.join(s.changed)})" if s.action is Action.UPDATE else "")
        for s in plan.steps if s.action is not Action.UNCHANGED
    ]
    return Outcome(len(records) + len([line for line in lines if line.error]), done.applied and not invalid,
                   [text for _, text in invalid], changes, plan)
