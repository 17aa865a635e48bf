"""`quanyi export-catalog` and `quanyi import-catalog`: moving a catalog between databases.

The demo's catalog, exported, imports into an empty database (migrated only) and exports
back byte for byte, in JSON Lines and in CSV; a file with an invalid line imports nothing.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from config import Settings
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from tests.e2e.shop import migrated_database
from tests.support import new_secret_key

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


@dataclass
class Databases:
    demo: str  # migrated, with the demo data
    empty: str  # migrated only
    key: bytes

    async def quanyi(self, url: str, *args: str | Path) -> Run:
        env = {name: value for name, value in os.environ.items() if not name.startswith("QUANYI_")}
        env["QUANYI_DATABASE_URL"] = url
        env["QUANYI_SECRET_KEY"] = base64.urlsafe_b64encode(self.key).decode()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from gateway import main; main()", *map(str, args),
            cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture(scope="module")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Databases]:
    key = new_secret_key()
    async with migrated_database(tmp_path_factory.mktemp("demo")) as demo, \
            migrated_database(tmp_path_factory.mktemp("empty")) as empty:
        db = Database.connect(Settings(database_url=demo, secret_key=key))
        try:
            await seed_demo(db, SecretBox(key))
        finally:
            await db.dispose()
        yield Databases(demo, empty, key)


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
async def test_the_demo_catalog_moves_to_an_empty_database_and_exports_back_byte_for_byte(
    databases: Databases, tmp_path: Path, suffix: str
) -> None:
    exported, again = tmp_path / f"demo.{suffix}", tmp_path / f"again.{suffix}"
    out = await databases.quanyi(databases.demo, "export-catalog", exported)
    assert out.code == 0, out.stderr
    assert out.stdout.strip() == f"102 records written to {exported}"  # 5 channels, 2 suppliers, 5 brands, 4 categories, 11 products, 25 SKUs, 50 listings

    imported = await databases.quanyi(databases.empty, "import-catalog", exported)
    assert imported.code == 0, imported.stderr + imported.stdout
    assert (await databases.quanyi(databases.empty, "export-catalog", again)).code == 0

    assert again.read_bytes() == exported.read_bytes()
    # The blind box moved with its pool: the items and weights it publishes, in its order.
    assert _pool_of(again, "BOX-STEAM") == [
        {"sku": "BOX-STEAM-100", "weight": 1}, {"sku": "BOX-STEAM-50", "weight": 3}, {"sku": "BOX-STEAM-20", "weight": 6},
    ]


def _pool_of(path: Path, code: str) -> list[dict[str, object]]:
    if path.suffix == ".jsonl":
        records = [orjson.loads(line) for line in path.read_text().splitlines()]
    else:
        records = [{**row, "pool": orjson.loads(row["pool"]) if row["pool"] else None}
                   for row in csv.DictReader(path.read_text().splitlines())]
    return next(record["pool"] for record in records if record["type"] == "sku" and record["code"] == code)


async def test_a_summary_and_the_same_file_again_changes_nothing(databases: Databases, tmp_path: Path) -> None:
    exported = tmp_path / "demo.jsonl"
    await databases.quanyi(databases.demo, "export-catalog", exported)

    again = await databases.quanyi(databases.demo, "import-catalog", exported)

    assert again.code == 0, again.stderr
    lines = again.stdout.splitlines()
    assert "sku:        0 created, 0 updated, 25 unchanged" in lines
    assert "listing:    0 created, 0 updated, 50 unchanged" in lines
    assert "records:    102" in lines


async def test_a_dry_run_lists_each_change_and_writes_nothing(databases: Databases, tmp_path: Path) -> None:
    exported = tmp_path / "demo.jsonl"
    await databases.quanyi(databases.demo, "export-catalog", exported)
    changed = exported.read_text().replace('"code":"QB-10","product":"qq-coins","name":"Q币 10 元"',
                                           '"code":"QB-10","product":"qq-coins","name":"Q币 10 元（新）"')
    exported.write_text(changed)

    dry = await databases.quanyi(databases.demo, "import-catalog", exported, "--dry-run")

    assert dry.code == 0, dry.stderr
    assert [line for line in dry.stdout.splitlines() if line.startswith("line ")] == ["line 43: update sku QB-10 (name)"]
    assert "dry run:    nothing was written" in dry.stdout
    after = tmp_path / "after.jsonl"
    await databases.quanyi(databases.demo, "export-catalog", after)
    assert "Q币 10 元（新）" not in after.read_text()


async def test_a_file_with_invalid_lines_imports_nothing_and_names_each_line(databases: Databases, tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(
        "type,code,name,product,kind,basePrice\n"
        "brand,fresh-brand,新品牌,,,\n"
        "sku,NEW-SKU,新 SKU,no-such-product,CARD_CODE,-1\n"
        "gadget,x,y,,,\n"
        "sku,NEW-SKU-2,新 SKU,qq-coins,CARD_CODE,1.001\n",
        encoding="utf-8",
    )

    run = await databases.quanyi(databases.demo, "import-catalog", source)

    assert run.code == 1
    assert run.stdout.splitlines() == [
        "line 3: product: no product 'no-such-product' (NOT_FOUND)",
        "line 3: basePrice: an amount cannot be negative (NEGATIVE_AMOUNT)",
        "line 4: type: one of channel, supplier, brand, category, product, sku, listing (INVALID_TYPE)",
        "line 5: basePrice: 1.001 has more decimals than CNY allows; give amounts as decimal strings, e.g. \"9.90\" (INVALID_AMOUNT)",
        "invalid:    4 problems; nothing was imported",
    ]
    exported = tmp_path / "after.jsonl"
    await databases.quanyi(databases.demo, "export-catalog", exported)
    assert "fresh-brand" not in exported.read_text()


async def test_an_unusable_file_is_refused_before_anything(databases: Databases, tmp_path: Path) -> None:
    source = tmp_path / "catalog.txt"
    source.write_text("{}\n")
    run = await databases.quanyi(databases.demo, "import-catalog", source)
    assert (run.code, run.stderr.splitlines()[-1]) == (2, "quanyi: catalog.txt: a catalog file ends in .jsonl, .ndjson or .csv")
