"""A CSV file of codes into a SKU's pool, in batches, each batch its own transaction.

After each batch commits, its rejected rows go to FILE.rejects.csv and the row it
reached to FILE.checkpoint, in that order, so `resume` continues after a crash
without losing a report or importing a row twice. Starting over is safe as well:
the codes already in the pool come back as duplicates.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Protocol, Self

from sqlalchemy import select

from broker import Broker
from domain.card_codes import CodeInput, RowRejection
from models import Sku
from services.core.csv_cells import safe_row
from services.core.database import Database
from services.core.events import stock_event
from services.core.secret_box import SecretBox
from services.core.unit_of_work import UnitOfWork
from services.inventory.code_import import import_codes
from services.inventory.csv_codes import CodeRows, UnusableInput, count_lines, open_codes

REJECT_COLUMNS = ("row", "field", "code", "message")


class Progress(Protocol):
    def start(self, total: int, done: int) -> None: ...
    def update(self, done: int) -> None: ...
    def close(self) -> None: ...


class _Silent:
    def start(self, total: int, done: int) -> None: ...
    def update(self, done: int) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class CsvImport:
    path: Path
    sku_code: str
    batch_size: int = 5_000
    resume: bool = False

    @property
    def checkpoint_path(self) -> Path:
        return self.path.with_name(self.path.name + ".checkpoint")

    @property
    def rejects_path(self) -> Path:
        return self.path.with_name(self.path.name + ".rejects.csv")


@dataclass
class Totals:
    """Counts for the whole file so far; the checkpoint stores them."""

    sku: str
    row: int = 0  # the last row of the last committed batch
    imported: int = 0
    duplicates: int = 0
    invalid: int = 0
    blank: int = 0
    complete: bool = False


@dataclass
class Report:
    totals: Totals
    resumed_after: int  # 0 when the file was read from its start
    rows_read: int = 0  # code rows read by this run (not the header)
    already_complete: bool = False


@dataclass
class _Batch:
    codes: list[CodeInput] = field(default_factory=list)
    refused: list[RowRejection] = field(default_factory=list)
    blank: int = 0
    last_row: int = 0

    def __len__(self) -> int:
        return len(self.codes) + len(self.refused) + self.blank


async def import_csv(
    db: Database, broker: Broker, box: SecretBox, job: CsvImport, progress: Progress | None = None
) -> Report:
    """Import the file; raises UnusableInput, before anything is written, if it cannot start."""
    progress = progress or _Silent()
    if not job.path.is_file():
        raise UnusableInput(f"no such file: {job.path}")
    sku_id = await _code_sku(db, job.sku_code)
    with open_codes(job.path) as stream:
        rows = CodeRows(stream)  # reads the header: a bad one stops us here
        totals = _checkpoint(job) if job.resume else None
        if totals is not None and totals.complete:
            return Report(totals, resumed_after=totals.row, already_complete=True)
        if totals is None:
            # Starting over: the checkpoint of an earlier run must not outlive it.
            job.checkpoint_path.unlink(missing_ok=True)
            totals = Totals(sku=job.sku_code)
        resumed_after, before = totals.row, _rows_counted(totals)
        with _Rejects(job.rejects_path, keep_through=resumed_after) as rejects:
            progress.start(count_lines(job.path), resumed_after)
            try:
                await _Run(db, broker, box, sku_id, job, totals, rejects, progress).through(rows)
            finally:
                progress.close()
    totals.complete = True
    _save(job.checkpoint_path, totals)
    return Report(totals, resumed_after=resumed_after, rows_read=_rows_counted(totals) - before)


def _rows_counted(totals: Totals) -> int:
    return totals.imported + totals.duplicates + totals.invalid + totals.blank


async def _code_sku(db: Database, code: str) -> int:
    async with db.fresh_sessions() as session:
        sku = await session.scalar(select(Sku).where(Sku.code == code))
    if sku is None:
        raise UnusableInput(f"no SKU with code {code!r}")
    if not sku.kind.is_code_backed:
        raise UnusableInput(
            f"SKU {code} is {sku.kind.value}: only CARD_CODE and SERIAL SKUs take codes"
        )
    return sku.id


@dataclass
class _Run:
    db: Database
    broker: Broker
    box: SecretBox
    sku_id: int
    job: CsvImport
    totals: Totals
    rejects: _Rejects
    progress: Progress

    async def through(self, rows: CodeRows) -> None:
        """Every row after the checkpoint, a batch at a time."""
        resumed_after = self.totals.row
        batch = _Batch()
        for row, entry in rows:
            if row <= resumed_after:
                continue
            batch.last_row = row
            if entry is None:
                batch.blank += 1
            elif isinstance(entry, RowRejection):
                batch.refused.append(entry)
            else:
                batch.codes.append(entry)
            if len(batch) >= self.job.batch_size:
                await self.commit(batch)
                batch = _Batch()
        if len(batch):
            await self.commit(batch)

    async def commit(self, batch: _Batch) -> None:
        async with UnitOfWork(self.db, self.broker) as uow:
            sku = await uow.session.get_one(Sku, self.sku_id)
            now = datetime.now(UTC)
            result = await import_codes(uow.session, self.box, sku, batch.codes, now=now)
            if result.imported:
                stock_event(uow, [sku.id])  # live stock views see the codes (and presale served)
        # Committed: report its rejects, then move the checkpoint past it.
        self.rejects.add(sorted([*batch.refused, *result.rejections], key=lambda r: r.row))
        totals = self.totals
        totals.row = batch.last_row
        totals.imported += result.imported
        totals.duplicates += result.duplicates
        totals.invalid += len(batch.refused) + result.invalid
        totals.blank += batch.blank
        _save(self.job.checkpoint_path, totals)
        self.progress.update(totals.row)


def _checkpoint(job: CsvImport) -> Totals | None:
    """Where an earlier run stopped, or None if it never committed a batch."""
    try:
        saved = json.loads(job.checkpoint_path.read_text())
        totals = Totals(**saved)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        raise UnusableInput(
            f"{job.checkpoint_path} is not a checkpoint of this command: {error}"
        ) from None
    if totals.sku != job.sku_code:
        raise UnusableInput(
            f"{job.checkpoint_path} is an import into SKU {totals.sku}, not {job.sku_code}"
        )
    return totals


def _save(path: Path, totals: Totals) -> None:
    # Written aside and renamed: a crash leaves the old checkpoint or the new, never half of one.
    partial = path.with_name(path.name + ".tmp")
    with partial.open("w") as out:
        json.dump(asdict(totals), out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


class _Rejects:
    """FILE.rejects.csv: each rejected row's number and reason, never the row's content."""

    def __init__(self, path: Path, keep_through: int) -> None:
        self._path, self._keep_through = path, keep_through
        self._file: IO[str] | None = None

    def __enter__(self) -> Self:
        kept: list[list[str]] = []
        if self._keep_through and self._path.exists():
            # Rows after the checkpoint are read again, so their earlier reports go.
            with self._path.open(newline="", encoding="utf-8") as old:
                lines = csv.reader(old)
                next(lines, None)
                kept = [line for line in lines if line and int(line[0]) <= self._keep_through]
        self._file = self._path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(REJECT_COLUMNS)
        self._writer.writerows(safe_row(line) for line in kept)
        return self

    def add(self, rejections: list[RowRejection]) -> None:
        assert self._file is not None
        self._writer.writerows(
            safe_row((r.row, r.field, r.reason.value, r.message)) for r in rejections
        )
        self._file.flush()
        os.fsync(self._file.fileno())

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
