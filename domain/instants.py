"""The points in time the gateway takes: with a time zone, and within the years it serves.

A time without an offset means a different instant in Beijing and in a UTC server's clock,
so it is refused rather than guessed. Years far away are refused too: year 1 at +08:00 has
no UTC form in Python (the conversion overflows), and no price window, code expiry,
statement period or report of this shop lies outside 2000 to 2099.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # the first instant refused

NEEDS_OFFSET = "give a time zone, e.g. 2026-01-01T00:00:00+08:00"
OUT_OF_RANGE = "a time is from 2000-01-01 to 2099-12-31 (UTC)"


class InstantError(ValueError):
    """A time the gateway does not take; the message says why."""


def check_instant(value: datetime) -> datetime:
    """The time as given, if it has an offset and lies in [EARLIEST, LATEST); InstantError otherwise."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InstantError(NEEDS_OFFSET)
    # Compared by their offsets' sum, never converted: year 1 at +08:00 cannot be.
    try:
        inside = EARLIEST <= value < LATEST
    except OverflowError:
        inside = False
    if not inside:
        raise InstantError(OUT_OF_RANGE)
    return value
