"""Commands say what they did and nothing else: no Alembic lines, however often they migrate.

Every command of the embedded mode brings its SQLite database to the newest schema first;
Alembic's own INFO lines (one per migration, two more each time it looks at a database)
used to come with each of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.core.migrate import newest_revision

PROJECT = Path(__file__).resolve().parents[1]


def quanyi(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("QUANYI_")}
    environment["QUANYI_DATABASE_URL"] = f"sqlite+aiosqlite:///{folder}/shop.db"
    return subprocess.run(
        [sys.executable, "-c", "import sys; from cli import run; run(sys.argv[1:])", *args],
        cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=120, check=True,
    )


def test_migrate_says_which_schema_the_database_is_at_and_alembic_says_nothing(tmp_path: Path) -> None:
    first = quanyi(tmp_path, "migrate")
    again = quanyi(tmp_path, "migrate")

    head = newest_revision()
    count = int(head.split("_")[0])
    assert first.stdout == f"database migrated to {head} ({count} migrations applied)\n"
    assert again.stdout == f"database is at the newest schema already ({head})\n"
    # The one line on standard error: the development key, created by the first command only.
    assert [line.split(" ", 3)[2:] for line in first.stderr.splitlines()] == [
        ["WARNING", f"quanyi.config QUANYI_SECRET_KEY is not set: created a development key in {tmp_path}/shop.db.secret.key. "
                    "Set QUANYI_SECRET_KEY in production."]]
    assert again.stderr == ""


def test_a_command_on_a_new_database_prints_its_own_output_alone(tmp_path: Path) -> None:
    issued = quanyi(tmp_path, "keys", "create", "--role", "ADMIN", "--name", "ops")

    lines = issued.stdout.splitlines()
    assert lines[0] == "ADMIN key for all channels (shown once; store it safely):"
    assert len(lines) == 2 and lines[1].startswith("qy_")
    assert "alembic" not in issued.stderr and "INFO" not in issued.stderr
