"""1,000,000 ledger entries for the settlement benchmark, loaded with COPY through asyncpg.

Orders of one channel, two lines each, every line delivered: four postings per line
(payment, cost, commission, margin), one in ten refunded (four more). The entries are the
ones `post_delivery` and `post_refund` would write, spread over one month.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

MONTH_START = datetime(2026, 9, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 10, 1, tzinfo=UTC)
COMMISSION_BP = 600


@dataclass(frozen=True)
class Loaded:
    channel_id: int
    supplier_id: int
    orders: int
    lines: int
    entries: int
    seconds: float


def _split(price: int, cost: int, quantity: int) -> list[tuple[str, int]]:
    gross = price * quantity
    # Half-up to the fen, as Money.apply_rate rounds (amounts here are positive).
    commission = (gross * COMMISSION_BP + 5_000) // 10_000
    return [("CHANNEL", gross), ("SUPPLIER", -cost * quantity), ("COMMISSION", -commission), ("MARGIN", -(gross - cost * quantity - commission))]


async def load(url: str, target_entries: int) -> Loaded:
    started = datetime.now(UTC)
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        channel_id = await connection.fetchval(
            "INSERT INTO channel (code, name, kind, currency, commission_bp, settlement_cycle, active, public) "
            "VALUES ('bench-settle', 'bench', 'MARKETPLACE', 'CNY', $1, 'MONTHLY', true, false) RETURNING id", COMMISSION_BP,
        )
        supplier_id = await connection.fetchval("INSERT INTO supplier (code, name, active) VALUES ('bench-supplier', 'bench', true) RETURNING id")
        sku_id, price, cost = await connection.fetchrow("SELECT id, base_price_fen, supplier_cost_fen FROM sku WHERE kind <> 'BUNDLE' ORDER BY id LIMIT 1")
        base = {t: await connection.fetchval(f'SELECT coalesce(max(id), 0) FROM "{t}"')
                for t in ("order", "order_line", "ledger_transaction", "ledger_entry")}
        chooser = random.Random(8)
        orders, lines, transactions, entries = [], [], [], []
        span = (MONTH_END - MONTH_START).total_seconds()
        order_id, line_id, tx_id, entry_id = base["order"], base["order_line"], base["ledger_transaction"], base["ledger_entry"]
        while entry_id - base["ledger_entry"] < target_entries:
            order_id += 1
            at = MONTH_START + timedelta(seconds=chooser.random() * span * 0.95)
            number = f"B{order_id:012d}"
            quantities = [chooser.randrange(1, 4) for _ in range(2)]
            orders.append((order_id, number, channel_id, f"EXT-{order_id}", "DELIVERED", "CNY", price * sum(quantities), "bench", at, at))
            for quantity in quantities:
                line_id += 1
                lines.append((line_id, order_id, sku_id, quantity, price, 0))
                postings = [("DELIVERY", at, _split(price, cost, quantity))]
                if chooser.random() < 0.1:
                    back = at + timedelta(hours=1)
                    postings.append(("REFUND", back, [(a, -m) for a, m in _split(price, cost, quantity)]))
                for kind, when, split in postings:
                    tx_id += 1
                    transactions.append((tx_id, f"{kind.lower()}:{line_id}", kind, when, "bench"))
                    for account, amount in split:
                        entry_id += 1
                        entries.append((entry_id, tx_id, kind, account, channel_id, supplier_id, order_id, line_id, amount, "CNY", when))
        await connection.copy_records_to_table(
            "order", records=orders,
            columns=["id", "number", "channel_id", "idempotency_key", "status", "currency", "total_fen", "placed_by", "created_at", "updated_at"],
        )
        await connection.copy_records_to_table(
            "order_line", records=lines, columns=["id", "order_id", "sku_id", "quantity", "unit_price_fen", "presale_quantity"],
        )
        await connection.copy_records_to_table("ledger_transaction", records=transactions, columns=["id", "key", "kind", "at", "actor"])
        await connection.copy_records_to_table(
            "ledger_entry", records=entries,
            columns=["id", "transaction_id", "kind", "account", "channel_id", "supplier_id", "order_id", "line_id", "amount_fen", "currency", "at"],
        )
        for table in ("order", "order_line", "ledger_transaction", "ledger_entry"):
            await connection.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT max(id) FROM \"{table}\"))")
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    seconds = (datetime.now(UTC) - started).total_seconds()
    return Loaded(channel_id, supplier_id, len(orders), len(lines), len(entries), seconds)
