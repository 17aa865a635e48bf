"""`quanyi import-codes`: a CSV file into a SKU's pool, with a summary, a rejects file and resume."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config import Settings
from domain.catalog import SkuKind
from models import CardCode, Sku
from services.core.database import Database
from services.core.secret_box import SecretBox
from tests.e2e.shop import migrated_database
from tests.services import catalog_rows as rows
from tests.support import new_secret_key

ROOT = Path(__file__).resolve().parent.parent
EXPIRES = "2030-06-30T23:59:59+08:00"


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def summary(self) -> dict[str, str]:
        """The `name: value` lines of the summary, without the time (which varies)."""
        pairs = (line.split(":", 1) for line in self.stdout.splitlines() if ":" in line)
        return {name.strip(): value.strip() for name, value in pairs if name != "time"}


@dataclass
class Pools:
    db: Database
    url: str
    key: bytes

    async def sku(self, kind: SkuKind = SkuKind.CARD_CODE) -> Sku:
        async with self.db.sessions() as session, session.begin():
            brand = await rows.brand(session, rows.unique("cli-brand"))
            category = await rows.category(session, rows.unique("cli-category"))
            product = await rows.product(
                session, brand=brand, category=category, name="命令行导入", active=False
            )
            return await rows.sku(session, product, kind)

    async def quanyi(self, *args: str | Path) -> Run:
        env = {name: value for name, value in os.environ.items() if not name.startswith("QUANYI_")}
        env["QUANYI_DATABASE_URL"] = self.url
        env["QUANYI_SECRET_KEY"] = base64.urlsafe_b64encode(self.key).decode()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from gateway import main; main()",
            *map(str, args),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return Run(process.returncode, out.decode(), err.decode())

    async def secrets(self, sku: Sku) -> list[str]:
        box = SecretBox(self.key)
        async with self.db.sessions() as session:
            sealed = await session.scalars(
                select(CardCode.secret_ciphertext)
                .where(CardCode.sku_id == sku.id)
                .order_by(CardCode.id)
            )
            return [box.open(s, context=str(sku.id).encode()) for s in sealed]

    async def count(self, sku: Sku) -> int:
        async with self.db.sessions() as session:
            return int(
                await session.scalar(select(func.count()).where(CardCode.sku_id == sku.id)) or 0
            )


@pytest.fixture(scope="module")
async def pools(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pools]:
    async with migrated_database(tmp_path_factory.mktemp("cli-import")) as url:
        db = Database.connect(Settings(database_url=url))
        try:
            yield Pools(db, url, new_secret_key())
        finally:
            await db.dispose()


def write_csv(path: Path, lines: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(lines)
    return path


def rejects(path: Path) -> list[list[str]]:
    with Path(f"{path}.rejects.csv").open(newline="", encoding="utf-8") as found:
        return list(csv.reader(found))


def checkpoint(path: Path) -> dict[str, object]:
    return json.loads(Path(f"{path}.checkpoint").read_text())


def codes(count: int, prefix: str = "CLI") -> list[list[str]]:
    return [[f"{prefix}-{n:05d}-PLAINTEXT", f"NO.{n:05d}", EXPIRES, ""] for n in range(count)]


async def test_a_file_with_a_few_bad_rows_imports_the_rest_and_lists_each_rejected_row(
    pools: Pools, tmp_path: Path
) -> None:
    steam = await pools.sku()
    lines = [["secret", "number", "expires_at", "uses"], *codes(200)]
    # Rows are the file's line numbers: the header is row 1, codes start at row 2.
    lines[10] = ["", "NO.EMPTY", "", ""]  # row 11
    lines[50] = [lines[2][0], "NO.AGAIN", "", ""]  # row 51 repeats row 3
    lines[100] = ["CLI-EXPIRED-PLAINTEXT", "", "2020-01-01T00:00:00+00:00", ""]  # row 101
    lines[150] = ["CLI-USES-PLAINTEXT", "", "", "two"]  # row 151
    lines[180] = ["CLI-WIDE-PLAINTEXT", "", "", "", "extra"]  # row 181
    lines[190] = []  # row 191: a blank line
    source = write_csv(tmp_path / "steam.csv", lines)

    run = await pools.quanyi("import-codes", "--sku", steam.code, source, "--batch", "40")

    assert (run.code, run.summary()) == (
        0,
        {
            "imported": "194",
            "duplicates": "1",
            "invalid": "4",
            "blank rows": "1",
            "rejects": str(tmp_path / "steam.csv.rejects.csv"),
        },
    )
    assert rejects(source) == [
        ["row", "field", "code", "message"],
        ["11", "secret", "SECRET_REQUIRED", "the secret is empty"],
        ["51", "secret", "DUPLICATE_CODE", "the code is already in the pool"],
        ["101", "expires_at", "ALREADY_EXPIRED", "the code has already expired"],
        ["151", "uses", "INVALID_USES", "uses must be a whole number"],
        ["181", "", "WRONG_FIELD_COUNT", "5 fields where the header has 4"],
    ]
    assert checkpoint(source) == {
        "sku": steam.code,
        "row": 201,
        "imported": 194,
        "duplicates": 1,
        "invalid": 4,
        "blank": 1,
        "complete": True,
    }
    stored = await pools.secrets(steam)
    assert len(stored) == 194 and stored[:2] == ["CLI-00000-PLAINTEXT", "CLI-00001-PLAINTEXT"]
    assert "100%" in run.stderr  # the progress bar
    assert "PLAINTEXT" not in run.stdout + run.stderr + Path(f"{source}.rejects.csv").read_text()


async def test_a_file_of_secrets_alone_needs_no_header(pools: Pools, tmp_path: Path) -> None:
    qq = await pools.sku()
    source = tmp_path / "qq.csv"
    source.write_text(
        "QQ-AAAA-0001\nQQ-AAAA-0002\n\nQQ-AAAA-0003\n", encoding="utf-8-sig"
    )  # with a byte-order mark

    run = await pools.quanyi("import-codes", "--sku", qq.code, source)

    assert (run.code, run.summary()["imported"], run.summary()["invalid"]) == (0, "3", "0")
    assert await pools.secrets(qq) == ["QQ-AAAA-0001", "QQ-AAAA-0002", "QQ-AAAA-0003"]


async def test_a_serial_file_gives_uses(pools: Pools, tmp_path: Path) -> None:
    licence = await pools.sku(SkuKind.SERIAL)
    source = write_csv(
        tmp_path / "serials.csv",
        [["卡号", "卡密", "次数"], ["SN-1", "LIC-ONE", "5"], ["SN-2", "LIC-TWO", ""]],
    )

    run = await pools.quanyi("import-codes", "--sku", licence.code, source)

    assert (run.code, run.summary()["imported"]) == (0, "2")
    async with pools.db.sessions() as session:
        found = (
            await session.execute(
                select(CardCode.number, CardCode.uses_left)
                .where(CardCode.sku_id == licence.id)
                .order_by(CardCode.id)
            )
        ).all()
    assert [tuple(row) for row in found] == [("SN-1", 5), ("SN-2", 1)]


async def test_a_file_or_sku_that_cannot_be_imported_stops_before_any_write(
    pools: Pools, tmp_path: Path
) -> None:
    steam = await pools.sku()
    top_up = await pools.sku(SkuKind.DIRECT_RECHARGE)
    good = write_csv(tmp_path / "good.csv", [["secret"], ["GOOD-1"]])
    bad_header = write_csv(tmp_path / "header.csv", [["secret", "pin"], ["CODE-1", "1234"]])
    no_header = write_csv(tmp_path / "wide.csv", [["CODE-1", "1234"]])
    empty = tmp_path / "empty.csv"
    empty.write_text("")

    runs = {
        "missing file": await pools.quanyi(
            "import-codes", "--sku", steam.code, tmp_path / "missing.csv"
        ),
        "unknown SKU": await pools.quanyi("import-codes", "--sku", "NO-SUCH-SKU", good),
        "top-up SKU": await pools.quanyi("import-codes", "--sku", top_up.code, good),
        "unknown column": await pools.quanyi("import-codes", "--sku", steam.code, bad_header),
        "no header": await pools.quanyi("import-codes", "--sku", steam.code, no_header),
        "empty file": await pools.quanyi("import-codes", "--sku", steam.code, empty),
    }

    assert {
        name: (run.code, run.stderr.strip().splitlines()[-1]) for name, run in runs.items()
    } == {
        "missing file": (2, f"quanyi: no such file: {tmp_path / 'missing.csv'}"),
        "unknown SKU": (2, "quanyi: no SKU with code 'NO-SUCH-SKU'"),
        "top-up SKU": (
            2,
            f"quanyi: SKU {top_up.code} is DIRECT_RECHARGE: only CARD_CODE and SERIAL SKUs take codes",
        ),
        "unknown column": (
            2,
            "quanyi: unknown column 'pin': the columns are secret, number, expires_at and uses",
        ),
        "no header": (
            2,
            (
                "quanyi: the first row must be a header naming the columns (secret, number, expires_at, uses), "
                "or the file must be a single column of secrets"
            ),
        ),
        "empty file": (2, "quanyi: the file has no rows"),
    }
    assert await pools.count(steam) == 0
    assert not any(
        Path(f"{path}.rejects.csv").exists() for path in (good, bad_header, no_header, empty)
    )


async def test_resume_after_a_crash_imports_the_rest_once(pools: Pools, tmp_path: Path) -> None:
    coins = await pools.sku()
    lines = [["secret", "number", "expires_at", "uses"], *codes(100, "RESUME")]
    lines[20] = ["", "NO.X", "", ""]  # row 21, rejected before the crash
    lines[80] = ["", "NO.Y", "", ""]  # row 81, rejected after it
    source = write_csv(tmp_path / "coins.csv", lines)
    # What a run that died after committing its batches up to row 61 leaves behind.
    first_part = write_csv(tmp_path / "first-part.csv", lines[:61])
    assert (await pools.quanyi("import-codes", "--sku", coins.code, first_part)).code == 0
    Path(f"{first_part}.rejects.csv").rename(f"{source}.rejects.csv")
    Path(f"{source}.checkpoint").write_text(
        json.dumps(
            {
                "sku": coins.code,
                "row": 61,
                "imported": 59,
                "duplicates": 0,
                "invalid": 1,
                "blank": 0,
                "complete": False,
            }
        )
    )

    resumed = await pools.quanyi(
        "import-codes", "--sku", coins.code, source, "--resume", "--batch", "7"
    )

    assert resumed.code == 0
    assert resumed.stdout.splitlines()[0] == "resumed after row 61"
    assert {k: resumed.summary()[k] for k in ("imported", "duplicates", "invalid")} == {
        "imported": "98",
        "duplicates": "0",
        "invalid": "2",
    }
    assert await pools.count(coins) == 98
    assert [line[:3] for line in rejects(source)] == [
        ["row", "field", "code"],
        ["21", "secret", "SECRET_REQUIRED"],
        ["81", "secret", "SECRET_REQUIRED"],
    ]

    again = await pools.quanyi("import-codes", "--sku", coins.code, source, "--resume")
    over = await pools.quanyi("import-codes", "--sku", coins.code, source)

    assert (again.code, again.stdout.splitlines()[0]) == (
        0,
        f"{source} was imported completely before (see {source}.checkpoint); nothing to do",
    )
    assert (over.code, over.summary()["imported"], over.summary()["duplicates"]) == (0, "0", "98")
    assert await pools.count(coins) == 98


async def test_a_checkpoint_of_another_sku_is_not_resumed(pools: Pools, tmp_path: Path) -> None:
    steam = await pools.sku()
    source = write_csv(tmp_path / "codes.csv", [["secret"], ["X-1"]])
    Path(f"{source}.checkpoint").write_text(
        json.dumps({"sku": "OTHER", "row": 1, "complete": False})
    )

    run = await pools.quanyi("import-codes", "--sku", steam.code, source, "--resume")

    assert (run.code, run.stderr.strip().splitlines()[-1]) == (
        2,
        f"quanyi: {source}.checkpoint is an import into SKU OTHER, not {steam.code}",
    )
    assert await pools.count(steam) == 0


async def test_codes_already_in_another_skus_pool_are_reported_as_duplicates(pools: Pools, tmp_path: Path) -> None:
    steam, xbox = await pools.sku(), await pools.sku()
    header = ["secret", "number", "expires_at", "uses"]
    first = write_csv(tmp_path / "steam.csv", [header, *codes(5, "TWIN")])
    assert (await pools.quanyi("import-codes", "--sku", steam.code, first)).code == 0
    second = write_csv(tmp_path / "xbox.csv", [header, *codes(3, "TWIN"), *codes(2, "XBOX")])

    run = await pools.quanyi("import-codes", "--sku", xbox.code, second)

    assert (run.code, run.summary()) == (
        0,
        {"imported": "2", "duplicates": "3", "invalid": "0", "rejects": f"{second}.rejects.csv"},
    )
    assert rejects(second) == [
        ["row", "field", "code", "message"],
        *([str(row), "secret", "DUPLICATE_CODE", "the code is already in the pool"] for row in (2, 3, 4)),
    ]
    assert await pools.secrets(xbox) == ["XBOX-00000-PLAINTEXT", "XBOX-00001-PLAINTEXT"]
    assert await pools.count(steam) == 5
