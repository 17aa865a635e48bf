"""Admission of requests: each caller's allowance of query cost, as a leaky bucket.

A bucket holds up to `maximum` points and refills at `restore_rate` points a second. A
request takes its requested cost up front, and gets back the difference once its actual
cost is known. A request that costs more than the bucket holds waits until it refills:
`retry_after` says how long. The figures follow Shopify's, whose shape partners know.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from domain.access import Principal, Role

# One request may never cost more than this, whatever its caller's bucket holds.
MAX_QUERY_COST = 1000


@dataclass(frozen=True, slots=True)
class Allowance:
    maximum: int  # points a full bucket holds
    restore_rate: int  # points restored each second

    def __post_init__(self) -> None:
        if self.maximum < 1 or self.restore_rate < 1:
            raise ValueError("a budget holds and restores at least one point")


ALLOWANCES: dict[Role | None, Allowance] = {
    None: Allowance(1000, 50),  # anonymous callers, by client address; buyers with an order token
    Role.STOREFRONT: Allowance(1000, 50),
    Role.PARTNER: Allowance(2000, 100),
    Role.ADMIN: Allowance(10_000, 500),
}


def allowance_of(principal: Principal, override: Allowance | None = None) -> Allowance:
    """A key's own allowance where an operator set one, else its role's."""
    if override is not None:
        return override
    # A buyer's order token says which order, not who: it is budgeted like any anonymous caller.
    return ALLOWANCES[None if principal.order_number is not None else principal.role]


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
