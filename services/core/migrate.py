"""Bring a database to the newest schema with Alembic, quietly.

Alembic logs each migration it runs, and a line about the database whenever it looks at
one; every command of the SQLite mode migrates first, so those lines would come with each
of them. Its logs are kept to warnings, and the caller is told which migrations ran.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # '%' is Alembic's interpolation character; URLs may contain it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> list[str]:
    """Runs the migrations the database lacks; the revisions applied, oldest first."""
    config = alembic_config(database_url)
    applied: list[str] = []

    def note(*, step: Any, **_: Any) -> None:
        applied.append(str(step.up_revision_id))

    config.attributes["on_version_apply"] = note  # migrations/env.py hands it to Alembic
    with _quiet("alembic"):
        command.upgrade(config, revision)
    return applied


def newest_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    return str(head)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(max(logging.WARNING, level))
    try:
        yield
    finally:
        logger.setLevel(level)
