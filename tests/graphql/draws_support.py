"""The shipped verifier, run as a buyer would run it: `quanyi verify-draws FILE`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def verify_draws(saved: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from cli import run; run(sys.argv[1:])", "verify-draws", str(saved)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    return done.returncode, done.stdout
