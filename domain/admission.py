"""Admission of requests: each caller's allowance of query cost, as a leaky bucket.

A bucket holds up to `maximum` points and refills at `restore_rate` points a second. A
request takes its requested cost up front, and gets back the difference once its actual
cost is known. A request that costs more than the bucket holds waits until it refills:
`retry_after` says how long. The figures follow Shopify's, whose shape partners know.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from domain.access import Allowance, Principal, Role

# One request may never cost more than this, whatever its caller's bucket holds.
MAX_QUERY_COST = 1000
# The largest bucket an operator may give a key, and the fastest refill.
MAX_ALLOWANCE = Allowance(1_000_000, 100_000)

Allowances = Mapping[Role | None, Allowance]

ALLOWANCES: Allowances = {
    None: Allowance(1000, 50),  # anonymous callers, by client address; buyers with an order token
    Role.STOREFRONT: Allowance(1000, 50),
    Role.PARTNER: Allowance(2000, 100),
    Role.ADMIN: Allowance(10_000, 500),
}
_NAMES: Mapping[str, Role | None] = {"anonymous": None, **{role.value.lower(): role for role in Role}}


def allowance_of(principal: Principal, allowances: Allowances = ALLOWANCES) -> Allowance:
    """A key's own allowance where an operator set one, else its role's."""
    if principal.allowance is not None and principal.order_number is None:
        return principal.allowance
    # A buyer's order token says which order, not who: it is budgeted like any anonymous caller.
    return allowances[None if principal.order_number is not None else principal.role]


def check_allowance(maximum: int, restore_rate: int) -> str | None:
    """Why an allowance an operator asked for cannot be given, or None."""
    if not 1 <= maximum <= MAX_ALLOWANCE.maximum:
        return f"maximum must be between 1 and {MAX_ALLOWANCE.maximum}"
    if not 1 <= restore_rate <= min(maximum, MAX_ALLOWANCE.restore_rate):
        return "restoreRate must be at least 1 and at most the maximum"
    return None


def parse_allowances(text: str) -> dict[Role | None, Allowance]:
    """Role budgets from configuration, e.g. `anonymous=600/20,partner=4000/200`; roles not
    named keep their defaults. Raises ValueError naming what is wrong."""
    found = dict(ALLOWANCES)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, figures = item.partition("=")
        maximum, _, rate = figures.partition("/")
        if name.strip().lower() not in _NAMES or not maximum.strip().isdigit() or not rate.strip().isdigit():
            raise ValueError(f"budget {item!r}: expected role=maximum/restoreRate, role one of {', '.join(_NAMES)}")
        problem = check_allowance(int(maximum), int(rate))
        if problem:
            raise ValueError(f"budget {item!r}: {problem}")
        found[_NAMES[name.strip().lower()]] = Allowance(int(maximum), int(rate))
    return found


def bucket_of(principal: Principal, client_ip: str | None) -> str:
    """Whose bucket a request draws from: its key's, or its client address's when anonymous."""
    if principal.role is not None and principal.key_prefix and principal.order_number is None:
        return f"key:{principal.key_prefix}"
    return f"ip:{client_ip or 'unknown'}"


@dataclass(frozen=True, slots=True)
class Throttle:
    """A bucket after a request drew on it (or was refused)."""

    allowed: bool
    available: float  # points left now
    allowance: Allowance

    def retry_after(self, cost: int) -> int:
        """Whole seconds until the bucket holds `cost` points (at least 1 when refused)."""
        if self.allowed:
            return 0
        missing = max(0.0, cost - self.available)
        return max(1, math.ceil(missing / self.allowance.restore_rate))


def refill(available: float, elapsed: float, allowance: Allowance) -> float:
    """What a bucket holds `elapsed` seconds after it held `available` points."""
    return min(float(allowance.maximum), available + max(0.0, elapsed) * allowance.restore_rate)
