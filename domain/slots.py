"""How a top-up SKU's counter stock, and a channel's quota on a SKU, are spread over their
slots (services/inventory/slots.py, services/inventory/quota_slots.py).

Concurrent orders of one SKU each take their units from one slot, so N slots let N of them
commit without waiting on each other. Setting the stock lays the units that no order holds
evenly over slots 0..N-1; a slot keeps the units its open orders hold, since their
allocations name it and give them back there. A quota is laid out the same way, its `used`
units in the place of the reserved ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# A direct top-up SKU's stock is spread over this many slots unless configured otherwise
# (QUANYI_STOCK_SLOTS). Eight: at the database floor of a flash sale (32 concurrent orders),
# eight slots sell a top-up SKU at the rate of a code pool, 2.3-2.5x one slot; 16 and 32 did
# not gain measurably beyond the run-to-run spread. Fewer slots keep each one large enough
# that a multi-unit order rarely needs several (docs/benchmarks.md "Hot counters").
DEFAULT_SLOTS = 8
MAX_SLOTS = 64


def spread(on_hand: int, reserved: Mapping[int, int], slots: int) -> dict[int, int]:
    """Each slot's units on hand after setting the SKU's total to `on_hand`.

    `reserved` is what open orders hold in each existing slot; `on_hand` is at least their
    sum. Slots 0..slots-1 share the free units (the first ones one more when they do not
    divide evenly); a slot past them is kept only while it holds reserved units, with
    nothing free, and is left out otherwise (the caller deletes it).
    """
    if not 1 <= slots <= MAX_SLOTS:
        raise ValueError(f"slots from 1 to {MAX_SLOTS}")
    free = on_hand - sum(reserved.values())
    if free < 0:
        raise ValueError("on hand below what open orders hold")
    share, extra = divmod(free, slots)
    result = {slot: reserved.get(slot, 0) + share + (1 if slot < extra else 0) for slot in range(slots)}
    result.update({slot: held for slot, held in reserved.items() if slot >= slots and held > 0})
    return result


def quota_shares(quota: int, used: Mapping[int, int], slots: int) -> dict[int, int]:
    """Each slot's quota after setting a channel's quota on a SKU to `quota`; `used` is
    what orders took from each existing slot. The shares add up to `quota`.

    A quota that covers what is used is spread as stock is (`spread`): every slot keeps its
    used units and the room is shared out. One below it still adds up: each slot that was
    used keeps the same fraction of its used units as its quota (the first ones one more
    while some is left over), every other slot of 0..slots-1 gets none. No slot then has
    room. Releases keep it so (`relaid_quotas`): while any slot is over its share, the slots
    are laid out again, so one slot's units given back never open room that the others'
    excess has not paid for.
    """
    total = sum(used.values())
    if quota >= total:
        return spread(quota, used, slots)
    if not 1 <= slots <= MAX_SLOTS:
        raise ValueError(f"slots from 1 to {MAX_SLOTS}")
    if quota < 0:
        raise ValueError("a quota cannot be negative")
    shares = {slot: 0 for slot in range(slots)}
    shares.update({slot: units * quota // total for slot, units in used.items() if units > 0})
    left = quota - sum(shares.values())
    for slot in sorted(shares):
        if left and shares[slot] < used.get(slot, 0):
            shares[slot] += 1
            left -= 1
    return shares


def relaid_quotas(quotas: Sequence[int], used: Sequence[int]) -> list[int]:
    """The quotas of a pair's slots (in slot order) once releases brought their `used` down.

    While no slot is over its quota (used > quota), each has room only within its own share
    and the quotas stand. Once one is, its excess is units the others' room would sell a
    second time: the slots are laid out again with `quota_shares` over the same number of
    slots, their sum unchanged. Then either what is used is under the channel's quota, every
    slot keeps its used units and the room is spread; or it is not, and no slot has room.
    """
    if all(taken <= quota for quota, taken in zip(quotas, used, strict=True)):
        return list(quotas)
    shares = quota_shares(sum(quotas), dict(enumerate(used)), len(quotas))
    return [shares[position] for position in range(len(quotas))]


def draw(free: list[tuple[int, int]], wanted: int) -> list[tuple[int, int]]:
    """(slot, units) taking `wanted` units from slots in slot order, or [] when all of
    them together hold fewer. `free` is each slot's free units, in slot order."""
    plan: list[tuple[int, int]] = []
    for slot, units in free:
        take = min(max(units, 0), wanted - sum(units for _, units in plan))
        if take > 0:
            plan.append((slot, take))
    return plan if sum(units for _, units in plan) == wanted else []
