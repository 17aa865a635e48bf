"""Coupon guessing: each buyer identity and client address may miss only so often.

A code that matches nothing on the order's channel is a miss, counted per identity (phone,
e-mail, device, account) and per client address over a sliding window, in the risk check's
counters (Redis across processes, or in process). Past the cap, every coupon of that buyer or
address is refused for the rest of the window, found or not, so a bot enumerating a public
code's neighbours, or a batch of generated ones, learns nothing more. An address shared behind
a carrier's NAT gets a larger cap than one buyer.

Reading a count records the member "seen" (the store counts distinct members, so it adds at
most one), which is why a count's misses are one less than what the store answers.
"""

from __future__ import annotations

from domain.limits import Identity
from domain.risk import CounterHit
from services.risk.counters import Counters

WINDOW_SECONDS = 600
MAX_MISSES_PER_BUYER = 10
MAX_MISSES_PER_ADDRESS = 50
TOO_MANY = "too many coupon codes tried; try again later"


def _caps(who: Identity) -> list[tuple[str, int]]:
    caps = [(f"coupon-miss:{contact}", MAX_MISSES_PER_BUYER) for contact in who.contacts()]
    if who.address:
        caps.append((f"coupon-miss:ip:{who.address}", MAX_MISSES_PER_ADDRESS))
    return caps


async def barred(counters: Counters, who: Identity, now: float) -> bool:
    """Whether this buyer or address has missed too often to try another code now."""
    caps = _caps(who)
    if not caps:
        return False
    counted = await counters.tally([CounterHit(key, "seen", WINDOW_SECONDS) for key, _ in caps], now)
    return any(count - 1 >= cap for count, (_, cap) in zip(counted.counts, caps, strict=True))


async def missed(counters: Counters, who: Identity, now: float) -> None:
    """Count one miss against each of the buyer's identities and its address."""
    caps = _caps(who)
    if caps:
        await counters.tally([CounterHit(key, None, WINDOW_SECONDS) for key, _ in caps], now)
