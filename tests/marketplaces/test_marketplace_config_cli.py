"""`quanyi marketplace-config`: a channel connected to its marketplace from the command line,
the app secret taken from the environment and stored sealed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]


def quanyi(folder: Path, *args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    environment["QUANYI_DATABASE_URL"] = f"sqlite+aiosqlite:///{folder}/shop.db"
    if secret is not None:
        environment["QUANYI_MARKETPLACE_APP_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-c", "import sys; from cli import run; run(sys.argv[1:])", *args],
        cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=120,
    )


def test_a_channel_is_connected_with_its_secret_sealed(tmp_path: Path) -> None:
    assert quanyi(tmp_path, "seed-demo").returncode == 0
    args = ("marketplace-config", "--channel", "taobao", "--endpoint", "https://open.example.com", "--app-key", "12345",
            "--poll-seconds", "30", "--outer-id", "TB-QB10=QB-10")
    done = quanyi(tmp_path, *args, secret="app-secret-from-env")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ("channel taobao now pulls its marketplace at https://open.example.com every 30 s "
                           "(app key 12345; the secret stored encrypted); pushes go to /marketplaces/taobao/push\n")
    with sqlite3.connect(tmp_path / "shop.db") as database:
        app_key, sealed, outer_ids, poll = database.execute(
            "SELECT app_key, secret_ciphertext, outer_ids, poll_seconds FROM marketplace_connection").fetchone()
        jobs = database.execute("SELECT count(*) FROM job WHERE kind = 'marketplace.pull'").fetchone()[0]
    assert (app_key, outer_ids, poll, jobs) == ("12345", '{"TB-QB10": "QB-10"}', 30, 1)
    assert b"app-secret-from-env" not in sealed
    assert "app-secret-from-env" not in done.stdout + done.stderr


def test_mistakes_are_said_plainly_and_change_nothing(tmp_path: Path) -> None:
    base = ("marketplace-config", "--channel", "taobao", "--endpoint", "https://open.example.com", "--app-key", "k")
    missing = quanyi(tmp_path, *base)
    assert (missing.returncode, missing.stderr.strip().splitlines()[-1]) == (
        2, "quanyi: give the marketplace's app secret in QUANYI_MARKETPLACE_APP_SECRET")
    mapping = quanyi(tmp_path, *base, "--outer-id", "no-equals-sign", secret="s")
    assert mapping.returncode == 2 and "--outer-id is OUTER_ID=SKU_CODE" in mapping.stderr
    unknown = quanyi(tmp_path, *base[:2], "nowhere", *base[3:], secret="s")
    assert unknown.returncode == 2 and "unknown channel 'nowhere'" in unknown.stderr
