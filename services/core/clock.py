"""What reads the time: a `Clock` is called for the present instant (aware, UTC).

Code whose rules run on a calendar (renewals of memberships, their reminders and retries)
takes a clock instead of calling `datetime.now`, so that tests can drive months of it in
seconds with a clock of their own; the gateway gives it `system_clock`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)
