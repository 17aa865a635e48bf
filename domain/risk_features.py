"""What the risk model sees of an order attempt: its facts and a few counters of its own.

The model's counters are kept by the same store as the rules' (one round trip records and
counts both); their keys start `m:` so no rule shares them. Features are numbers in a fixed
order; a model records the names it was trained on and refuses to score with another list.
Amounts enter as yuan in a float: a feature is a measurement for the model, never money.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from domain.risk import VIRTUAL_OPERATOR_PREFIXES, CounterHit, Dimension, Facts

DAY = 24 * 3600
# A buyer's day is Beijing time: night-time bursts are a signal only in the buyer's own clock.
LOCAL_OFFSET = timedelta(hours=8)

FEATURES: tuple[str, ...] = (
    "amount",  # yuan
    "units",
    "lines",
    "ip_attempts_1m",
    "ip_attempts_1h",
    "device_attempts_1h",
    "phone_attempts_1h",
    "account_attempts_1d",
    "device_new_accounts_1d",
    "ip_accounts_1h",
    "ip_devices_1h",
    "device_coupons_1d",
    "account_age_days",  # -1: a new account
    "has_device",
    "has_phone",
    "virtual_segment",
    "hour",  # local hour, 0-23
    "coupon",
    "channel",  # index in the model's channel list; -1 unseen
)

# key suffix -> (dimension counted by, what is counted, window seconds); member None counts attempts.
_COUNTERS: tuple[tuple[str, Dimension, Dimension | None, int, bool], ...] = (
    ("ip_attempts_1m", Dimension.IP, None, 60, False),
    ("ip_attempts_1h", Dimension.IP, None, 3600, False),
    ("device_attempts_1h", Dimension.DEVICE, None, 3600, False),
    ("phone_attempts_1h", Dimension.PHONE, None, 3600, False),
    ("account_attempts_1d", Dimension.ACCOUNT, None, DAY, False),
    ("device_new_accounts_1d", Dimension.DEVICE, Dimension.ACCOUNT, DAY, True),
    ("ip_accounts_1h", Dimension.IP, Dimension.ACCOUNT, 3600, False),
    ("ip_devices_1h", Dimension.IP, Dimension.DEVICE, 3600, False),
)
_COUPONS = ("device_coupons_1d", Dimension.DEVICE, DAY)


def _key(name: str, value: str) -> str:
    return f"m:{name}:{value}"


def model_counters(facts: Facts) -> list[CounterHit]:
    """The counters the model reads for this attempt, recorded with it."""
    hits = []
    for name, by, member, window, new_only in _COUNTERS:
        value = facts.value(by)
        counted = facts.value(member) if member is not None else None
        if value is None or (member is not None and counted is None):
            continue
        hits.append(CounterHit(_key(name, value), counted, window, DAY if new_only else None))
    name, by, window = _COUPONS
    device = facts.value(by)
    if device is not None and facts.coupon:
        hits.append(CounterHit(_key(name, device), None, window))
    return hits


def features(facts: Facts, counts: Mapping[str, int], channels: Sequence[str]) -> list[float]:
    """The attempt as the model's numbers, in FEATURES order; `counts` by counter key."""

    def counted(name: str, by: Dimension) -> float:
        value = facts.value(by)
        return float(counts.get(_key(name, value), 0)) if value is not None else 0.0

    phone = facts.value(Dimension.PHONE)
    local = facts.at + LOCAL_OFFSET
    return [
        float(facts.amount.amount),
        float(sum(facts.quantities.values())),
        float(len(facts.quantities)),
        *(counted(name, by) for name, by, _, _, _ in _COUNTERS),
        counted(_COUPONS[0], _COUPONS[1]) if facts.coupon else 0.0,
        -1.0 if facts.account_age is None else facts.account_age.total_seconds() / DAY,
        1.0 if facts.value(Dimension.DEVICE) else 0.0,
        1.0 if phone else 0.0,
        1.0 if phone and phone.startswith(VIRTUAL_OPERATOR_PREFIXES) else 0.0,
        float(local.hour),
        1.0 if facts.coupon else 0.0,
        float(channels.index(facts.channel)) if facts.channel in channels else -1.0,
    ]
