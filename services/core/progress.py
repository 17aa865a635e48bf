"""A progress bar for long commands: redrawn in place on a terminal, a line now and then in a log."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_WIDTH = 30


class TerminalProgress:
    def __init__(self, label: str, *, unit: str = "rows", stream: TextIO | None = None) -> None:
        self._label, self._unit = label, unit
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        # A terminal is redrawn often; a log file gets a line every few seconds.
        self._interval = 0.2 if self._tty else 5.0
        self._total = self._first = self._done = 0
        self._started = self._drawn = 0.0

    def start(self, total: int, done: int) -> None:
        self._total, self._first, self._done = max(total, 1), done, done
        self._started = time.monotonic()
        self._draw()

    def update(self, done: int) -> None:
        self._done = done
        if time.monotonic() - self._drawn >= self._interval:
            self._draw()

    def close(self) -> None:
        self._draw()
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self) -> None:
        self._drawn = now = time.monotonic()
        done = min(self._done, self._total)
        fraction = done / self._total
        filled = int(fraction * _WIDTH)
        elapsed = now - self._started
        rate = (done - self._first) / elapsed if elapsed > 0 else 0.0
        eta = f"{(self._total - done) / rate:.0f} s" if rate > 0 else "?"
        line = (
            f"{self._label} {fraction:4.0%} |{'#' * filled}{'.' * (_WIDTH - filled)}| "
            f"{done:,}/{self._total:,} {self._unit}, {rate:,.0f} {self._unit}/s, {elapsed:.0f} s, left {eta}"
        )
        self._stream.write(f"\r{line}\x1b[K" if self._tty else f"{line}\n")
        self._stream.flush()
