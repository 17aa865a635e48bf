"""Taking from a slotted row on PostgreSQL's driver: a top-up SKU's counter stock
(services/inventory/slots.py) and a channel's quota (services/inventory/quota_slots.py),
each in as few round trips as it can, for the order path in placement_pg.py.

Both go the same way: a savepoint; one statement taking from a slot with enough that no
other order holds, at random, that also tells whether the slots together have enough;
only when none was free, after rolling back to the savepoint, one statement waiting for the
first slot with enough in slot order, then one locking every slot in slot order and
drawing from several (twice: see slots.py why). The statements write the allocation or use
naming the slot, in the same round trip.
"""

from __future__ import annotations

from services.core.driver import Session

# A channel's quota in slots, taken as counter stock is (services/inventory/quota_slots.py):
# a slot with room that no other order holds, at random; failing that (after rolling back
# to the savepoint), the first slot with room, waiting for it; then every slot in slot
# order, drawing from several. Each with the use naming the slot it took from.
TAKE_QUOTA = """
WITH taken AS (
  UPDATE channel_quota SET used = used + $3
  WHERE channel_id = $4 AND sku_id = $2 AND quota - used >= $3 AND slot = (
    SELECT slot FROM channel_quota WHERE channel_id = $4 AND sku_id = $2 AND quota - used >= $3
    ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING id
), recorded AS (
  INSERT INTO quota_use (line_id, quota_id, sku_id, units)
  SELECT $1, taken.id, $2, $3 FROM taken
  RETURNING units
)
SELECT (SELECT sum(units) FROM recorded) AS units,
       (SELECT coalesce(sum(GREATEST(quota - used, 0)), 0) FROM channel_quota
        WHERE channel_id = $4 AND sku_id = $2) AS room
"""
TAKE_QUOTA_WAITING = TAKE_QUOTA.replace("ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED", "ORDER BY slot LIMIT 1 FOR UPDATE")
TAKE_QUOTA_SLOTS = """
WITH locked AS MATERIALIZED (
  SELECT id, slot, GREATEST(quota - used, 0) AS room FROM channel_quota
  WHERE channel_id = $4 AND sku_id = $2 ORDER BY slot FOR UPDATE
), plan AS (
  SELECT id, LEAST(room, $3 - COALESCE(sum(room) OVER (ORDER BY slot ROWS BETWEEN UNBOUNDED PRECEDING
                                                      AND 1 PRECEDING), 0)) AS units
  FROM locked
), taken AS (
  UPDATE channel_quota SET used = used + plan.units FROM plan
  WHERE (SELECT sum(room) FROM locked) >= $3 AND plan.units > 0 AND channel_quota.id = plan.id
  RETURNING channel_quota.id, plan.units
)
INSERT INTO quota_use (line_id, quota_id, sku_id, units)
SELECT $1, taken.id, $2, taken.units FROM taken
RETURNING units
"""

# Counter stock in slots (services/inventory/slots.py tells why each step is as it is):
# a slot with enough that no other order holds, at random; failing that (inside a savepoint
# rolled back first, so that no lock is kept out of slot order), the first slot with enough,
# waiting for it.
TAKE_COUNTER = """
WITH taken AS (
  UPDATE stock_level SET reserved = reserved + $3
  WHERE sku_id = $2 AND on_hand - reserved >= $3 AND slot = (
    SELECT slot FROM stock_level WHERE sku_id = $2 AND on_hand - reserved >= $3
    ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED)
  RETURNING sku_id, slot
), held AS (
  INSERT INTO allocation (line_id, sku_id, code_id, units, state, source, slot)
  SELECT $1, taken.sku_id, NULL, $3, 'HELD', 'COUNTER', taken.slot FROM taken
  RETURNING units
)
SELECT (SELECT sum(units) FROM held) AS units,
       (SELECT coalesce(sum(on_hand - reserved), 0) FROM stock_level WHERE sku_id = $2) AS free
"""
TAKE_COUNTER_WAITING = TAKE_COUNTER.replace("ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED", "ORDER BY slot LIMIT 1 FOR UPDATE")

# Neither found a slot: every slot of the SKU locked in slot order (the order of every
# statement waiting for slots), and the units drawn from them in that order, all or none.
TAKE_COUNTER_SLOTS = """
WITH locked AS MATERIALIZED (
  SELECT slot, GREATEST(on_hand - reserved, 0) AS free FROM stock_level WHERE sku_id = $2 ORDER BY slot FOR UPDATE
), plan AS (
  SELECT slot, LEAST(free, $3 - COALESCE(sum(free) OVER (ORDER BY slot ROWS BETWEEN UNBOUNDED PRECEDING
                                                          AND 1 PRECEDING), 0)) AS units
  FROM locked
), taken AS (
  UPDATE stock_level SET reserved = reserved + plan.units FROM plan
  WHERE (SELECT sum(free) FROM locked) >= $3 AND plan.units > 0
    AND stock_level.sku_id = $2 AND stock_level.slot = plan.slot
  RETURNING stock_level.slot, plan.units
)
INSERT INTO allocation (line_id, sku_id, code_id, units, state, source, slot)
SELECT $1, $2, NULL, taken.units, 'HELD', 'COUNTER', taken.slot FROM taken
RETURNING units
"""


async def take_quota(session: Session, line_id: int, sku_id: int, quantity: int, channel_id: int) -> int:
    """Units of the channel's quota taken for a line: all of them or none (quota_slots.take's steps)."""
    steps = (TAKE_QUOTA, TAKE_QUOTA_WAITING, TAKE_QUOTA_SLOTS, TAKE_QUOTA_SLOTS)
    return await _take(session, "quota_slot", steps, "room", quantity, line_id, sku_id, quantity, channel_id)


async def take_counter(session: Session, line_id: int, sku_id: int, quantity: int) -> int:
    """Units of a counter taken for a line: all of them or none (the steps of slots.take)."""
    steps = (TAKE_COUNTER, TAKE_COUNTER_WAITING, TAKE_COUNTER_SLOTS, TAKE_COUNTER_SLOTS)
    return await _take(session, "counter_slot", steps, "free", quantity, line_id, sku_id, quantity)


async def _take(session: Session, savepoint: str, steps: tuple[str, ...], left: str, quantity: int, *args: int) -> int:
    """The steps over a slotted row (each sent with `args`), each after the first from the
    savepoint: the first also tells (`left`) whether the slots together have room for
    `quantity` units."""
    await session.execute(f"SAVEPOINT {savepoint}")
    first = await session.fetchrow(steps[0], *args)
    assert first is not None
    if first["units"] or first[left] < quantity:
        # Taken; or refused, rightly: the slots had too little as the statement found them.
        return first["units"] or 0
    for statement in steps[1:]:
        await session.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
        if taken := sum(row["units"] or 0 for row in await session.fetch(statement, *args)):
            return taken
    return 0
