"""The architecture holds: the import contracts in pyproject.toml ([tool.importlinter]) pass.

Layers run transport -> resolvers -> schema -> services -> domain; the domain is pure; the
services know nothing of GraphQL; no two packages of a layer import each other in a circle.
`gateway.py` and `cli.py` are modules at the top, not packages, so the linter cannot see
them: the second test keeps every layer from importing them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("transport", "resolvers", "schema", "services", "domain", "models", "broker", "suppliers", "providers", "marketplaces")


def test_the_import_contracts_hold() -> None:
    # In a process of its own: the linter imports nothing of ours, but it sets up logging
    # and output the way a command line tool does, which would leak into later tests.
    linted = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports_command; lint_imports_command()", "--no-cache", "pyproject.toml"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "0 broken" in linted.stdout


def _imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_no_layer_imports_the_entry_points() -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {', '.join(sorted(names))}"
        for layer in LAYERS
        for path in sorted((ROOT / layer).rglob("*.py"))
        if (names := _imported(path) & {"gateway", "cli"})
    ]
    assert offenders == []
