"""order placement function: a coupon-free order of codes and counters placed in one round trip

Revision ID: 0037_order_placement_function
Revises: 0036_quota_slots

On PostgreSQL only (SQLite has no server-side functions; its path is unchanged). The
functions do what services/orders/placement_pg.py did in separate statements inside BEGIN
and COMMIT, in the same order and with the same statements, so a flash-sale order costs
one round trip instead of seven:

- `quanyi_place_order_v1`: the buyers' counts, the order (noting the counts it raised), its
  two events, the risk verdict, its lines; then each capped SKU's quota and each line's
  stock, in SKU order. A refusal raises an error of its own SQLSTATE (QY001 a purchase or
  hold limit, its DETAIL the 1-based position of the count that was full; QY002 a quota,
  DETAIL the SKU; QY003 stock, DETAIL "sku:units taken"), which rolls the whole call back.
  A key another order holds fails on the order's unique index, as before.
- `quanyi_take_quota_v1` and `quanyi_take_counter_v1`: a slotted row's steps
  (services/inventory/slots.py): a free slot at random; after rolling back to a
  savepoint, the first slot with enough, waiting; then every slot in slot order, drawing
  from several, twice.

The counts are taken before the order is inserted so that the order row is written once,
with its note of them; a count that is full is only reported after the insert, so that a
retry of an order that was placed is told so by the key's index (and answered as a retry)
rather than refused by its own earlier count. The names carry a version: a later change is
a new function beside this one, so gateways of both versions run during a deploy.
"""

from __future__ import annotations

from alembic import op

revision = '0037_order_placement_function'
down_revision = '0036_quota_slots'
branch_labels = None
depends_on = None

# Rolls a step back to the savepoint its block opened (PL/pgSQL: a block with an EXCEPTION
# clause is a subtransaction).
TAKE_QUOTA = r"""
CREATE OR REPLACE FUNCTION quanyi_take_quota_v1(p_line int, p_sku int, p_units int, p_channel int)
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
  v_units bigint;
  v_room bigint;
  v_round int;
BEGIN
  BEGIN
    WITH taken AS (
      UPDATE channel_quota SET used = used + p_units
      WHERE channel_id = p_channel AND sku_id = p_sku AND quota - used >= p_units AND slot = (
        SELECT q.slot FROM channel_quota q
        WHERE q.channel_id = p_channel AND q.sku_id = p_sku AND q.quota - q.used >= p_units
        ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING id
    ), recorded AS (
      INSERT INTO quota_use (line_id, quota_id, sku_id, units)
      SELECT p_line, taken.id, p_sku, p_units FROM taken
      RETURNING units
    )
    SELECT (SELECT sum(units) FROM recorded),
           (SELECT coalesce(sum(GREATEST(q.quota - q.used, 0)), 0) FROM channel_quota q
            WHERE q.channel_id = p_channel AND q.sku_id = p_sku)
    INTO v_units, v_room;
    IF coalesce(v_units, 0) > 0 THEN
      RETURN v_units;
    END IF;
    IF v_room < p_units THEN
      RETURN 0;  -- refused, rightly: the slots had too little room as the statement found them
    END IF;
    RAISE EXCEPTION 'back to the savepoint' USING ERRCODE = 'QY0RB';
  EXCEPTION WHEN SQLSTATE 'QY0RB' THEN NULL;
  END;
  BEGIN
    WITH taken AS (
      UPDATE channel_quota SET used = used + p_units
      WHERE channel_id = p_channel AND sku_id = p_sku AND quota - used >= p_units AND slot = (
        SELECT q.slot FROM channel_quota q
        WHERE q.channel_id = p_channel AND q.sku_id = p_sku AND q.quota - q.used >= p_units
        ORDER BY q.slot LIMIT 1 FOR UPDATE)
      RETURNING id
    ), recorded AS (
      INSERT INTO quota_use (line_id, quota_id, sku_id, units)
      SELECT p_line, taken.id, p_sku, p_units FROM taken
      RETURNING units
    )
    SELECT sum(units) INTO v_units FROM recorded;
    IF coalesce(v_units, 0) > 0 THEN
      RETURN v_units;
    END IF;
    RAISE EXCEPTION 'back to the savepoint' USING ERRCODE = 'QY0RB';
  EXCEPTION WHEN SQLSTATE 'QY0RB' THEN NULL;
  END;
  FOR v_round IN 1..2 LOOP
    BEGIN
      WITH locked AS MATERIALIZED (
        SELECT q.id, q.slot, GREATEST(q.quota - q.used, 0) AS room FROM channel_quota q
        WHERE q.channel_id = p_channel AND q.sku_id = p_sku ORDER BY q.slot FOR UPDATE
      ), plan AS (
        SELECT locked.id, LEAST(room, p_units - COALESCE(sum(room) OVER (ORDER BY slot ROWS BETWEEN UNBOUNDED
                                                                         PRECEDING AND 1 PRECEDING), 0)) AS units
        FROM locked
      ), taken AS (
        UPDATE channel_quota SET used = used + plan.units FROM plan
        WHERE (SELECT sum(room) FROM locked) >= p_units AND plan.units > 0 AND channel_quota.id = plan.id
        RETURNING channel_quota.id, plan.units
      ), recorded AS (
        INSERT INTO quota_use (line_id, quota_id, sku_id, units)
        SELECT p_line, taken.id, p_sku, taken.units FROM taken
        RETURNING units
      )
      SELECT sum(units) INTO v_units FROM recorded;
      IF coalesce(v_units, 0) > 0 THEN
        RETURN v_units;
      END IF;
      IF v_round = 2 THEN
        RETURN 0;
      END IF;
      RAISE EXCEPTION 'back to the savepoint' USING ERRCODE = 'QY0RB';
    EXCEPTION WHEN SQLSTATE 'QY0RB' THEN NULL;
    END;
  END LOOP;
  RETURN 0;
END
$fn$
"""

TAKE_COUNTER = r"""
CREATE OR REPLACE FUNCTION quanyi_take_counter_v1(p_line int, p_sku int, p_units int)
RETURNS int LANGUAGE plpgsql AS $fn$
DECLARE
  v_units bigint;
  v_free bigint;
  v_round int;
BEGIN
  BEGIN
    WITH taken AS (
      UPDATE stock_level SET reserved = reserved + p_units
      WHERE sku_id = p_sku AND on_hand - reserved >= p_units AND slot = (
        SELECT s.slot FROM stock_level s WHERE s.sku_id = p_sku AND s.on_hand - s.reserved >= p_units
        ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING stock_level.sku_id, stock_level.slot
    ), held AS (
      INSERT INTO allocation (line_id, sku_id, code_id, units, state, source, slot)
      SELECT p_line, taken.sku_id, NULL, p_units, 'HELD', 'COUNTER', taken.slot FROM taken
      RETURNING units
    )
    SELECT (SELECT sum(units) FROM held),
           (SELECT coalesce(sum(s.on_hand - s.reserved), 0) FROM stock_level s WHERE s.sku_id = p_sku)
    INTO v_units, v_free;
    IF coalesce(v_units, 0) > 0 THEN
      RETURN v_units;
    END IF;
    IF v_free < p_units THEN
      RETURN 0;  -- refused, rightly: the slots held too few as the statement found them
    END IF;
    RAISE EXCEPTION 'back to the savepoint' USING ERRCODE = 'QY0RB';
  EXCEPTION WHEN SQLSTATE 'QY0RB' THEN NULL;
  END;
  BEGIN
    WITH taken AS (
      UPDATE stock_level SET reserved = reserved + p_units
      WHERE sku_id = p_sku AND on_hand - reserved >= p_units AND slot = (
        SELECT s.slot FROM stock_level s WHERE s.sku_id = p_sku AND s.on_hand - s.reserved >= p_units
        ORDER BY s.slot LIMIT 1 FOR UPDATE)
      RETURNING stock_level.sku_id, stock_level.slot
    ), held AS (
      INSERT INTO allocation (line_id, sku_id, code_id, units, state, source, slot)
      SELECT p_line, taken.sku_id, NULL, p_units, 'HELD', 'COUNTER', taken.slot FROM taken
      RETURNING units
    )
    SELECT sum(units) INTO v_units FROM held;
    IF coalesce(v_units, 0) > 0 THEN
      RETURN v_units;
    END IF;
    RAISE EXCEPTION 'back to the savepoint' USING ERRCODE = 'QY0RB';
  EXCEPTION WHEN SQLSTATE 'QY0RB' THEN NULL;
  END;
  FOR v_round IN 1..2 LOOP
    BEGIN
      WITH locked AS MATERIALIZED (
        SELECT s.slot, GREATEST(s.on_hand - s.reserved, 0) AS free FROM stock_level s
        WHERE s.sku_id = p_sku ORDER BY s.slot FOR UPDATE
      ), plan AS (
        SELECT locked.slot, LEAST(free, p_units - COALESCE(sum(free) OVER (ORDER BY slot ROWS BETWEEN UNBOUNDED
                                                                           PRECEDING AND 1 PRECEDING), 0)) AS units
        FROM locked
      ), taken AS (
        UPDATE stock_level SET reserved = reserved + plan.units FROM plan
        WHERE (SELECT sum(free) FROM locked) >= p_units AND plan.units > 0
          AND stock_level.sku_id = p_sku AND stock_level.slot = plan.slot
        RETURNING stock_level.slot, plan.units
      ), held AS (
        INSERT INTO allocation (line_id, sku_id, code_id, units, state, source, slot)
        SELECT p_line, p_sku, NULL, taken.units, 'HELD', 'COUNTER', taken.slot FROM taken
        RETURNING units
      )
      SELECT sum(units) INTO v_units FROM held;
      IF coalesce(v_units, 0) > 0 THEN
        RETURN v_units;
      END IF;
      IF v_round = 2 THEN
        RETURN 0;
      END IF;
      RAISE EXCEPTION 'back to the savepoint' USING ERRCODE = 'QY0RB';
    EXCEPTION WHEN SQLSTATE 'QY0RB' THEN NULL;
    END;
  END LOOP;
  RETURN 0;
END
$fn$
"""

PLACE_ORDER = r"""
CREATE OR REPLACE FUNCTION quanyi_place_order_v1(
  p_number text, p_channel int, p_key text, p_status text, p_currency text, p_total bigint,
  p_phone text, p_email text, p_account text, p_device text, p_ip text, p_actor text,
  p_now timestamptz, p_expires timestamptz, p_why text,
  p_skus int[], p_quantities int[], p_prices bigint[], p_counters int[],
  p_decision text, p_score int, p_reasons json, p_facts json,
  p_scopes text[], p_buyers text[], p_units int[], p_caps int[], p_held int[])
RETURNS TABLE (o_order int, o_line int, o_sku int, o_tallies json) LANGUAGE plpgsql AS $fn$
DECLARE
  v_order int;
  v_over bigint;
  v_noted json;
  v_lines int[];
  v_skus int[];
  v_quantities int[];
  v_taken int;
  i int;
BEGIN
  IF coalesce(array_length(p_scopes, 1), 0) > 0 THEN
    -- The buyers' counts, in the order given (sorted: every transaction locks them so).
    WITH wanted AS (
      SELECT * FROM unnest(p_scopes, p_buyers, p_units, p_caps, p_held)
        WITH ORDINALITY AS w(scope, buyer, units, cap, held, n)
    ), raised AS (
      INSERT INTO buyer_tally (scope, buyer, units, cap)
      SELECT w.scope, w.buyer, w.units, w.cap FROM wanted w ORDER BY w.n
      ON CONFLICT (scope, buyer) DO UPDATE SET units = buyer_tally.units + excluded.units, cap = excluded.cap
      WHERE buyer_tally.units + excluded.units <= excluded.cap
      RETURNING buyer_tally.id, buyer_tally.scope, buyer_tally.buyer
    )
    SELECT min(w.n) FILTER (WHERE r.id IS NULL),
           json_agg(json_build_array(r.id, w.units, w.held) ORDER BY w.n)
    INTO v_over, v_noted
    FROM wanted w LEFT JOIN raised r ON r.scope = w.scope AND r.buyer = w.buyer;
  END IF;
  INSERT INTO "order" (number, channel_id, idempotency_key, status, currency, total_fen, buyer_phone,
                       buyer_email, recharge_account, device_id, client_ip, placed_by,
                       created_at, updated_at, expires_at, discount_fen, buyer_tallies)
  VALUES (p_number, p_channel, p_key, p_status, p_currency, p_total, p_phone, p_email, p_account, p_device,
          p_ip, p_actor, p_now, p_now, p_expires, 0, v_noted)
  RETURNING id INTO v_order;
  IF v_over IS NOT NULL THEN
    RAISE EXCEPTION 'purchase or hold limit' USING ERRCODE = 'QY001', DETAIL = v_over::text;
  END IF;
  INSERT INTO order_event (order_id, actor, from_status, to_status, reason, at)
  VALUES (v_order, p_actor, NULL, 'PENDING_RISK', 'placed', p_now),
         (v_order, 'system', 'PENDING_RISK', p_status, p_why, p_now);
  INSERT INTO risk_verdict (order_id, channel_id, idempotency_key, decision, score, reasons, facts, created_at)
  VALUES (v_order, p_channel, p_key, p_decision, p_score, p_reasons, p_facts, p_now);
  WITH line AS (
    INSERT INTO order_line (order_id, sku_id, quantity, unit_price_fen, presale_quantity, discount_fen)
    SELECT v_order, w.sku, w.quantity, w.price, 0, 0
    FROM unnest(p_skus, p_quantities, p_prices) WITH ORDINALITY AS w(sku, quantity, price, n)
    ORDER BY w.n
    RETURNING order_line.id, order_line.sku_id, order_line.quantity
  )
  SELECT array_agg(line.id ORDER BY line.sku_id), array_agg(line.sku_id ORDER BY line.sku_id),
         array_agg(line.quantity ORDER BY line.sku_id)
  INTO v_lines, v_skus, v_quantities FROM line;
  -- Quotas, then stock, each in SKU order: concurrent orders naming the same SKUs queue on
  -- their rows in one order instead of deadlocking.
  FOR i IN 1 .. array_length(v_skus, 1) LOOP
    IF EXISTS (SELECT 1 FROM channel_quota q WHERE q.channel_id = p_channel AND q.sku_id = v_skus[i]) THEN
      IF quanyi_take_quota_v1(v_lines[i], v_skus[i], v_quantities[i], p_channel) < v_quantities[i] THEN
        RAISE EXCEPTION 'quota used up' USING ERRCODE = 'QY002', DETAIL = v_skus[i]::text;
      END IF;
    END IF;
  END LOOP;
  FOR i IN 1 .. array_length(v_skus, 1) LOOP
    IF v_skus[i] = ANY(p_counters) THEN
      v_taken := quanyi_take_counter_v1(v_lines[i], v_skus[i], v_quantities[i]);
    ELSE
      -- SKIP LOCKED: concurrent buyers take different codes instead of queueing on the same rows.
      WITH claimed AS (
        UPDATE card_code SET status = 'RESERVED', order_line_id = v_lines[i]
        WHERE id = ANY(ARRAY(
                SELECT c.id FROM card_code c
                WHERE c.sku_id = v_skus[i] AND c.status = 'AVAILABLE' AND c.uses_left > 0
                  AND (c.expires_at IS NULL OR c.expires_at > p_now)
                ORDER BY c.id LIMIT v_quantities[i] FOR UPDATE SKIP LOCKED))
          AND status = 'AVAILABLE'
        RETURNING card_code.id
      ), held AS (
        INSERT INTO allocation (line_id, sku_id, code_id, units, state, source)
        SELECT v_lines[i], v_skus[i], claimed.id, 1, 'HELD', 'CODE' FROM claimed
        RETURNING code_id
      )
      SELECT count(*) INTO v_taken FROM held;
    END IF;
    IF v_taken < v_quantities[i] THEN
      RAISE EXCEPTION 'not enough stock' USING ERRCODE = 'QY003', DETAIL = v_skus[i]::text || ':' || v_taken::text;
    END IF;
  END LOOP;
  RETURN QUERY SELECT v_order, placed.line, placed.sku, v_noted FROM unnest(v_lines, v_skus) AS placed(line, sku);
END
$fn$
"""


def upgrade() -> None:
    if op.get_context().dialect.name != 'postgresql':
        return
    for function in (TAKE_QUOTA, TAKE_COUNTER, PLACE_ORDER):
        op.execute(function)


def downgrade() -> None:
    if op.get_context().dialect.name != 'postgresql':
        return
    op.execute('DROP FUNCTION IF EXISTS quanyi_place_order_v1(text, int, text, text, text, bigint, text, text, text, '
               'text, text, text, timestamptz, timestamptz, text, int[], int[], bigint[], int[], text, int, json, '
               'json, text[], text[], int[], int[], int[])')
    op.execute('DROP FUNCTION IF EXISTS quanyi_take_counter_v1(int, int, int)')
    op.execute('DROP FUNCTION IF EXISTS quanyi_take_quota_v1(int, int, int, int)')
