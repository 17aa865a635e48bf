"""`quanyi risk …`: an operator trains a model on labelled attempts, activates it, and reads what
enforcing it would change; a broken file stores nothing."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.shop import migrated_database
from tests.support import new_secret_key

ROOT = Path(__file__).resolve().parent.parent


async def quanyi(url: str, *args: str | Path) -> tuple[int, str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("QUANYI_")}
    env["QUANYI_DATABASE_URL"] = url
    env["QUANYI_SECRET_KEY"] = base64.urlsafe_b64encode(new_secret_key()).decode()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from gateway import main; main()", *map(str, args),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture(scope="module")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with migrated_database(tmp_path_factory.mktemp("risk-cli")) as url:
        yield url


@pytest.fixture(scope="module")
def attempts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("attempts") / "attempts.jsonl"
    subprocess.run([sys.executable, str(ROOT / "bench" / "fraud_data.py"), "--out", str(path), "--buyers", "400",
                    "--days", "12"], check=True, capture_output=True)
    return path


async def test_a_model_trained_from_a_file_is_stored_active_and_listed(database: str, attempts: Path) -> None:
    trained = await quanyi(database, "risk", "train", "--dataset", attempts, "--version", "first", "--trees", "20",
                           "--activate")
    listed = await quanyi(database, "risk", "models")
    report = await quanyi(database, "risk", "shadow-report")
    switched_off = await quanyi(database, "risk", "activate", "none")
    after = await quanyi(database, "risk", "models")

    assert trained[0] == 0, trained[2]
    assert trained[1].startswith("model first stored and active (examples ")
    assert listed[1].startswith("first (active)")
    assert report[1].strip() == "no attempts scored by a model in this period"
    assert switched_off[1].strip() == "no model active" and after[1].startswith("first  ")


async def test_a_version_is_stored_once_and_a_broken_file_stores_nothing(
    database: str, attempts: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text(attempts.read_text().splitlines()[0] + "\n{\"at\": \"2026-06-01\"}\n")

    again = await quanyi(database, "risk", "train", "--dataset", attempts, "--version", "first", "--trees", "5")
    bad = await quanyi(database, "risk", "train", "--dataset", broken, "--version", "broken")
    listed = await quanyi(database, "risk", "models")

    assert again[0] != 0 and "already stored" in again[2]
    assert bad[0] != 0 and "broken.jsonl:2: no fraud label" in bad[2]
    assert "broken" not in listed[1]
