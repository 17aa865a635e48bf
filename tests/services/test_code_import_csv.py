"""A CSV import commits batch by batch, and after a crash resumes where the last batch ended."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from domain.card_codes import Rejection, RowRejection
from domain.catalog import SkuKind
from models import CardCode, Product, Sku
from services.core.database import Database
from services.core.events import CATALOG_CHANGED, STOCK_BY_OPERATOR, STOCK_CHANGED
from services.core.secret_box import SecretBox
from services.inventory import csv_import
from services.inventory.csv_import import CsvImport, import_csv
from tests.services import catalog_rows as rows


@dataclass
class Recorder:
    """A broker that remembers what was published."""

    published: list[tuple[str, bytes]] = field(default_factory=list)

    async def publish(self, topic: str, message: bytes) -> None:
        self.published.append((topic, message))


@dataclass
class ProgressLog:
    calls: list[tuple[str, int]] = field(default_factory=list)

    def start(self, total: int, done: int) -> None:
        self.calls.append(("start", total))

    def update(self, done: int) -> None:
        self.calls.append(("update", done))

    def close(self) -> None:
        self.calls.append(("close", 0))


@pytest.fixture(scope="module")
def shelf(import_shelf: Product) -> Product:
    return import_shelf


async def new_sku(db: Database, shelf: Product) -> Sku:
    async with db.sessions() as session, session.begin():
        return await rows.sku(session, shelf, SkuKind.CARD_CODE)


async def pool_size(db: Database, sku: Sku) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).where(CardCode.sku_id == sku.id)) or 0)


def code_file(path: Path, count: int, *, empty_rows: tuple[int, ...] = ()) -> Path:
    """`count` codes after a header; the codes on the given rows (file lines) are left empty.

    Each file's codes are its own: a code is in the pool once, whatever SKU it went to.
    """
    prefix = rows.unique("FILE")
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["secret", "number"])
        for row in range(2, count + 2):
            writer.writerow(["" if row in empty_rows else f"{prefix}-{row:04d}", f"N{row}"])
    return path


def _skus(message: bytes) -> list[int]:
    return orjson.loads(message)["skus"]


def rejected_rows(job: CsvImport) -> list[int]:
    with job.rejects_path.open(newline="") as found:
        return [int(line[0]) for line in list(csv.reader(found))[1:]]


async def test_each_batch_is_committed_announced_and_reported(
    catalog_db: Database, shelf: Product, box: SecretBox, tmp_path: Path
) -> None:
    sku = await new_sku(catalog_db, shelf)
    job = CsvImport(code_file(tmp_path / "codes.csv", 25, empty_rows=(4,)), sku.code, batch_size=10)
    broker, progress = Recorder(), ProgressLog()

    report = await import_csv(catalog_db, broker, box, job, progress)  # type: ignore[arg-type]

    assert (report.totals.imported, report.totals.invalid, report.totals.row, report.rows_read) == (
        24,
        1,
        26,
        25,
    )
    # One stock event per batch, after its commit: live stock views and the catalog cache hear it.
    assert [(topic, _skus(message) if topic == STOCK_CHANGED else message) for topic, message in broker.published] == [
        (STOCK_CHANGED, [sku.id]), (CATALOG_CHANGED, STOCK_BY_OPERATOR),
    ] * 3
    assert progress.calls == [
        ("start", 26),
        ("update", 11),
        ("update", 21),
        ("update", 26),
        ("close", 0),
    ]
    assert rejected_rows(job) == [4]
    assert await pool_size(catalog_db, sku) == 24


async def test_a_crashed_import_resumes_after_its_last_committed_batch(
    catalog_db: Database,
    shelf: Product,
    box: SecretBox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sku = await new_sku(catalog_db, shelf)
    job = CsvImport(
        code_file(tmp_path / "crash.csv", 45, empty_rows=(5, 30)), sku.code, batch_size=10
    )
    real_import, calls = csv_import.import_codes, []

    async def dies_in_third_batch(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise ConnectionError("the database went away")
        return await real_import(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(csv_import, "import_codes", dies_in_third_batch)
    with pytest.raises(ConnectionError):
        await import_csv(catalog_db, Recorder(), box, job)  # type: ignore[arg-type]

    assert json.loads(job.checkpoint_path.read_text()) == {
        "sku": sku.code,
        "row": 21,
        "imported": 19,
        "duplicates": 0,
        "invalid": 1,
        "blank": 0,
        "complete": False,
    }
    assert rejected_rows(job) == [5]
    assert await pool_size(catalog_db, sku) == 19

    monkeypatch.undo()
    resumed = await import_csv(
        catalog_db, Recorder(), box, CsvImport(job.path, sku.code, batch_size=10, resume=True)
    )  # type: ignore[arg-type]

    assert (resumed.resumed_after, resumed.rows_read) == (21, 25)
    assert (resumed.totals.imported, resumed.totals.duplicates, resumed.totals.invalid) == (
        43,
        0,
        2,
    )
    assert rejected_rows(job) == [5, 30]
    assert await pool_size(catalog_db, sku) == 43


async def test_a_resume_drops_reports_of_rows_it_reads_again(
    catalog_db: Database, shelf: Product, box: SecretBox, tmp_path: Path
) -> None:
    # A run that died after writing a batch's rejects but before its checkpoint.
    sku = await new_sku(catalog_db, shelf)
    job = CsvImport(
        code_file(tmp_path / "late.csv", 12, empty_rows=(3, 9)), sku.code, batch_size=5, resume=True
    )
    job.rejects_path.write_text(
        "row,field,code,message\n3,secret,SECRET_REQUIRED,the secret is empty\n"
        "9,secret,SECRET_REQUIRED,the secret is empty\n"
    )
    job.checkpoint_path.write_text(
        json.dumps({"sku": sku.code, "row": 6, "imported": 0, "invalid": 1})
    )

    report = await import_csv(catalog_db, Recorder(), box, job)  # type: ignore[arg-type]

    assert (report.totals.imported, report.totals.invalid) == (6, 2)  # rows 7 to 13, less row 9
    assert rejected_rows(job) == [3, 9]


async def test_starting_over_forgets_the_old_checkpoint_and_skips_what_is_there(
    catalog_db: Database, shelf: Product, box: SecretBox, tmp_path: Path
) -> None:
    sku = await new_sku(catalog_db, shelf)
    path = code_file(tmp_path / "again.csv", 8)
    await import_csv(catalog_db, Recorder(), box, CsvImport(path, sku.code))  # type: ignore[arg-type]

    again = await import_csv(catalog_db, Recorder(), box, CsvImport(path, sku.code))  # type: ignore[arg-type]

    assert (again.totals.imported, again.totals.duplicates, again.resumed_after) == (0, 8, 0)
    assert await pool_size(catalog_db, sku) == 8


def test_a_rejects_file_opens_without_running_a_formula(tmp_path: Path) -> None:
    # Messages and fields are ours today; the file is written through the one CSV cell rule anyway.
    path = tmp_path / "codes.csv.rejects.csv"
    with csv_import._Rejects(path, keep_through=0) as rejects:
        rejects.add([
            RowRejection(2, "=cmd|' /C calc'!A0", Rejection.MALFORMED_ROW, "@SUM(A1:A9)"),
            RowRejection(3, None, Rejection.SECRET_REQUIRED, "the secret is empty"),
        ])
    with csv_import._Rejects(path, keep_through=3):  # a resume keeps them, still inert
        pass

    with path.open(newline="") as found:
        assert list(csv.reader(found)) == [
            ["row", "field", "code", "message"],
            ["2", "'=cmd|' /C calc'!A0", "MALFORMED_ROW", "'@SUM(A1:A9)"],
            ["3", "", "SECRET_REQUIRED", "the secret is empty"],
        ]
