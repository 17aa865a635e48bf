"""Verifiable draws (blind boxes, lotteries): commit to a secret seed, draw from it, reveal it.

Before a sale the seed's commitment, SHA-256(seed), is published; after the sale the seed
itself. Every draw is a function of the seed, a public label (an order number and the
unit's place in it; a lottery's entry count) and the published weights of what could be
drawn then, so anyone holding the revealed seed recomputes each result:

    block(k) = HMAC-SHA256(key = seed, message = ASCII "<label>:<attempt>:<k>")   k = 0, 1, ...
    x        = the first 8 bytes of block(k), a big-endian unsigned 64-bit integer
    W        = the sum of the eligible items' weights
    accept x when x < 2**64 - (2**64 mod W), else try k + 1    (no modulo bias)
    r        = x mod W
    pick     = the first eligible item, in the published order, whose running weight exceeds r

`attempt` counts the redraws of one unit: an item drawn but found gone (another buyer took its
last unit in the same instant) leaves the eligible set and the unit is drawn again with
attempt + 1. Items out of stock are not eligible, so the odds are the published weights
re-normalised over what remains. The module is pure; docs/draws.md says the same for outsiders.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SEED_BYTES = 32
MAX_WEIGHT = 1_000_000
MAX_POOL = 50
_SPAN = 1 << 64


@dataclass(frozen=True, slots=True)
class Weighted:
    """An item that can be drawn, by its public name (a SKU code), and its weight."""

    item: str
    weight: int


def commitment(seed: bytes) -> str:
    """What is published before the sale: SHA-256 of the seed, in hex."""
    return hashlib.sha256(seed).hexdigest()


def opens(seed: bytes, committed: str) -> bool:
    """Whether a revealed seed is the one committed to."""
    return hmac.compare_digest(commitment(seed), committed)


def uniform(seed: bytes, label: str, attempt: int, bound: int) -> int:
    """A uniform integer in [0, bound), by rejection sampling over HMAC-SHA256 blocks."""
    if bound <= 0 or bound > _SPAN:
        raise ValueError("the bound must be between 1 and 2**64")
    limit = _SPAN - (_SPAN % bound)
    k = 0
    while True:
        block = hmac.new(seed, f"{label}:{attempt}:{k}".encode("ascii"), hashlib.sha256).digest()
        x = int.from_bytes(block[:8], "big")
        if x < limit:
            return x % bound
        k += 1


def pick(seed: bytes, label: str, attempt: int, eligible: Sequence[Weighted]) -> str:
    """The item drawn from `eligible` (in their published order) for one label and attempt."""
    total = sum(item.weight for item in eligible)
    if total <= 0:
        raise ValueError("nothing to draw from")
    r = uniform(seed, label, attempt, total)
    running = 0
    for item in eligible:
        running += item.weight
        if r < running:
            return item.item
    raise AssertionError("unreachable: r < total")


def unit_label(order_number: str, unit: int) -> str:
    """The label of one unit of a blind box in an order: its number and the unit's place (from 0)."""
    return f"{order_number}:{unit}"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One draw of a unit: what was eligible, and what came out."""

    eligible: tuple[Weighted, ...]
    picked: str


def recheck(seed: bytes, label: str, attempts: Sequence[Attempt]) -> str | None:
    """Why a recorded unit's draws do not follow from the seed, or None when they do.

    Each attempt must pick what the seed gives over its eligible set; each redraw must
    drop exactly the item the attempt before picked (found gone) and nothing else.
    """
    if not attempts:
        return "no draw recorded"
    for n, attempt in enumerate(attempts):
        if not attempt.eligible or any(w.weight <= 0 for w in attempt.eligible):
            return f"attempt {n}: an empty or unweighted eligible set"
        if pick(seed, label, n, attempt.eligible) != attempt.picked:
            return f"attempt {n}: the seed draws {pick(seed, label, n, attempt.eligible)}, not {attempt.picked}"
        if n > 0:
            before = attempts[n - 1]
            expected = tuple(w for w in before.eligible if w.item != before.picked)
            if attempt.eligible != expected:
                return f"attempt {n}: the eligible set is not the one before less {before.picked}"
    return None


def eligible_of(pool: Sequence[Weighted], in_stock: set[str]) -> tuple[Weighted, ...]:
    """The pool's items with stock, in the pool's published order."""
    return tuple(item for item in pool if item.item in in_stock)


def odds(pool: Sequence[Weighted], in_stock: set[str] | None = None) -> dict[str, tuple[int, int]]:
    """Each item's chance as an exact fraction (weight, total) over what is eligible; an item
    out of stock has (0, total)."""
    eligible = pool if in_stock is None else eligible_of(pool, in_stock)
    total = sum(item.weight for item in eligible)
    names = {item.item for item in eligible}
    return {item.item: (item.weight if item.item in names else 0, total) for item in pool}


def winners(seed: bytes, label: str, entries: Sequence[str], count: int) -> list[str]:
    """`count` distinct entries drawn without replacement, each equally likely, in draw order.

    Draw i picks uniformly among the entries not drawn yet (their given, published order)
    with attempt = i: the same block function as the boxes, every entry of weight 1.
    """
    left = list(entries)
    drawn: list[str] = []
    for i in range(min(count, len(left))):
        drawn.append(left.pop(uniform(seed, label, i, len(left))))
    return drawn


def check_round(answer: Mapping[str, Any]) -> list[str]:
    """Every problem with a revealed round as the public `drawRounds` query answers it (one
    element of the list: seed, commitment, draws with their attempts); empty: it all holds."""
    seed_hex, committed = answer.get("seed"), answer.get("commitment")
    if not seed_hex:
        return ["the round's seed is not revealed yet"]
    try:
        seed = bytes.fromhex(str(seed_hex))
    except ValueError:
        return ["the seed is not hex"]
    problems: list[str] = []
    if not opens(seed, str(committed or "")):
        problems.append("SHA-256 of the seed is not the published commitment")
    for draw in answer.get("draws") or []:
        label = unit_label(str(draw["orderNumber"]), int(draw["unit"]))
        attempts = [
            Attempt(tuple(Weighted(str(w["item"]), int(w["weight"])) for w in a["eligible"]), str(a["picked"]))
            for a in draw["attempts"]
        ]
        why = recheck(seed, label, attempts)
        if why is None and attempts[-1].picked != draw["item"]:
            why = f"the last attempt drew {attempts[-1].picked}, the order got {draw['item']}"
        if why is not None:
            problems.append(f"{label}: {why}")
    return problems


def check_lottery(answer: Mapping[str, Any], lottery_id: int) -> list[str]:
    """Every problem with a drawn lottery as the public `lottery` query answers it (seed,
    commitment, entryCount, winners, winningNumbers); empty: it all holds."""
    seed_hex = answer.get("seed")
    if answer.get("status") != "DRAWN" or not seed_hex:
        return ["the lottery is not drawn yet"]
    try:
        seed = bytes.fromhex(str(seed_hex))
    except ValueError:
        return ["the seed is not hex"]
    problems: list[str] = []
    if not opens(seed, str(answer.get("commitment") or "")):
        problems.append("SHA-256 of the seed is not the published commitment")
    entries = [str(n) for n in range(1, int(answer.get("entryCount") or 0) + 1)]
    expected = [int(n) for n in winners(seed, f"lottery:{lottery_id}", entries, int(answer.get("winners") or 0))]
    if list(answer.get("winningNumbers") or []) != expected:
        problems.append(f"the seed draws entries {expected}, the lottery published {answer.get('winningNumbers')}")
    return problems
