"""Whether a supplier looks down, so that top-ups wait for it instead of all failing at once.

A supplier that refuses or does not answer everything (an outage, a maintenance window)
would otherwise take every top-up sent meanwhile to its last supplier and a refund: a
refund storm that turns minutes of outage into hundreds of refunded orders. So each
process keeps the recent answers of each supplier: after `threshold` failed or unanswered
calls in a row, with no success between, the supplier is down. Top-ups for it are then
not sent (they wait, their order FULFILLING) except one probe at a time, after a pause
that doubles while it stays down (`base` seconds, at most `cap`). The first success closes
it and the waiting top-ups go out. A supplier down for longer than `hold` seconds is taken
at its word: top-ups go out again, fail, move to the next supplier and, failing everywhere,
are refunded; so no refund comes before that bound, and none is held back after it.

Per process: with N gateways, up to N × threshold top-ups fail before all of them hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from services.core import telemetry
from suppliers.base import Outcome

FAILURES = (Outcome.FAILED, Outcome.UNKNOWN)


@dataclass
class _State:
    failures: int = 0
    down_since: float | None = None
    next_probe: float = 0.0
    pause: float = 0.0


class SupplierHealth:
    def __init__(self, *, threshold: int = 3, base: float = 1.0, cap: float = 30.0, hold: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold, self._base, self._cap, self._hold = threshold, base, cap, hold
        self._clock = clock
        self._states: dict[str, _State] = {}

    def record(self, supplier: str, outcome: Outcome) -> bool:
        """Count the answer; True when it is the one that takes the supplier for down."""
        state = self._states.setdefault(supplier, _State())
        if outcome not in FAILURES:
            if state.down_since is not None:
                telemetry.supplier_down(supplier, False)
            self._states[supplier] = _State()  # it answers: up
            return False
        state.failures += 1
        now = self._clock()
        if state.down_since is None:
            if state.failures >= self._threshold:
                state.down_since, state.pause = now, self._base
                state.next_probe = now + state.pause
                telemetry.supplier_down(supplier, True)
                return True
        else:  # a probe failed: wait longer before the next one
            state.pause = min(self._cap, state.pause * 2)
            state.next_probe = now + state.pause
        return False

    def forget(self) -> None:
        """Take every supplier for up again (their settings changed; tests start afresh)."""
        for supplier, state in self._states.items():
            if state.down_since is not None:
                telemetry.supplier_down(supplier, False)
        self._states.clear()

    def down(self, supplier: str) -> bool:
        state = self._states.get(supplier)
        return state is not None and state.down_since is not None

    def all_well(self) -> bool:
        """No supplier down and none with a failure since its last success."""
        return not any(state.failures or state.down_since is not None for state in self._states.values())

    def down_now(self) -> list[str]:
        """The suppliers taken for down at this moment."""
        return [supplier for supplier, state in self._states.items() if state.down_since is not None]

    def wait(self, supplier: str) -> float:
        """Seconds a top-up for `supplier` should wait before it is sent; 0: send it now (the
        supplier is up, this is the probe, or it has been down longer than the hold)."""
        state = self._states.get(supplier)
        if state is None or state.down_since is None:
            return 0.0
        now = self._clock()
        if now - state.down_since >= self._hold:
            return 0.0
        if now >= state.next_probe:
            state.next_probe = now + state.pause  # this caller probes; the others wait for its answer
            return 0.0
        return state.next_probe - now
