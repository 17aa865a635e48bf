"""A supplier failing everything: its top-ups wait (probing it now and then) instead of being
failed over and refunded all at once, but only for a bounded time."""

from __future__ import annotations

from services.fulfilment.supplier_health import SupplierHealth
from suppliers.base import Outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_supplier_is_down_after_failures_in_a_row_and_up_at_its_first_success() -> None:
    clock = Clock()
    health = SupplierHealth(threshold=3, base=1.0, cap=8.0, hold=600.0, clock=clock)
    for outcome in (Outcome.FAILED, Outcome.UNKNOWN, Outcome.SUCCEEDED, Outcome.FAILED, Outcome.FAILED):
        health.record("acme", outcome)
    assert (health.down("acme"), health.wait("acme")) == (False, 0.0)  # the success broke the run

    health.record("acme", Outcome.UNKNOWN)
    assert (health.down("acme"), health.wait("acme")) == (True, 1.0)
    assert health.wait("other") == 0.0

    health.record("acme", Outcome.PENDING)  # it answers again
    assert (health.down("acme"), health.wait("acme")) == (False, 0.0)


def test_a_down_supplier_gets_one_probe_at_a_time_with_pauses_doubling_to_a_cap() -> None:
    clock = Clock()
    health = SupplierHealth(threshold=1, base=1.0, cap=4.0, hold=600.0, clock=clock)
    health.record("acme", Outcome.FAILED)
    pauses = []
    for _ in range(4):
        clock.now += health.wait("acme")
        assert health.wait("acme") == 0.0  # this caller probes...
        assert health.wait("acme") > 0.0  # ...and the next one waits for its answer
        health.record("acme", Outcome.FAILED)
        pauses.append(health.wait("acme"))
    assert pauses == [2.0, 4.0, 4.0, 4.0]


def test_after_the_hold_a_supplier_still_down_gets_its_top_ups_so_they_can_fail_over() -> None:
    clock = Clock()
    health = SupplierHealth(threshold=1, base=1.0, cap=30.0, hold=60.0, clock=clock)
    health.record("acme", Outcome.FAILED)
    clock.now += 59.5
    health.wait("acme")  # a probe
    assert health.wait("acme") > 0.0
    clock.now += 0.5
    assert [health.wait("acme") for _ in range(3)] == [0.0, 0.0, 0.0]
