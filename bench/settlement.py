"""Settlement benchmark: a statement over 1,000,000 ledger entries beside the raw SQL aggregate.

    python bench/settlement.py [--entries 1000000] [--repeats 7]

Creates its own PostgreSQL database on 127.0.0.1 (migrated, demo data), bulk-loads the
entries with COPY (bench/settlement_data.py), then times in turn, in the same run:
generateSettlementStatement's service (`statements.generate`: upsert, row lock, one
aggregate, totals stored, commit) for the channel and for the supplier, and the same
figures computed by one hand-written SQL statement over asyncpg. Finally it confirms the
channel statement once (claiming every entry). Prints the table and writes the
"Settlement" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from servers import ROOT

sys.path.insert(1, str(ROOT))

import tables
from catalog_doc import machine, write_section
from database import bench_database
from settlement_data import MONTH_END, MONTH_START, Loaded, load

HEADING = "Settlement"

RAW = """
SELECT
  coalesce(sum(amount_fen) FILTER (WHERE account = 'CHANNEL' AND kind = 'DELIVERY'), 0),
  coalesce(-sum(amount_fen) FILTER (WHERE account = 'SUPPLIER' AND kind = 'DELIVERY'), 0),
  coalesce(-sum(amount_fen) FILTER (WHERE account = 'COMMISSION' AND kind = 'DELIVERY'), 0),
  coalesce(-sum(amount_fen) FILTER (WHERE account = 'MARGIN' AND kind = 'DELIVERY'), 0),
  coalesce(-sum(amount_fen) FILTER (WHERE account = 'CHANNEL' AND kind = 'REFUND'), 0),
  coalesce(sum(amount_fen) FILTER (WHERE account = 'SUPPLIER' AND kind = 'REFUND'), 0),
  coalesce(sum(amount_fen) FILTER (WHERE account = 'COMMISSION' AND kind = 'REFUND'), 0),
  count(DISTINCT order_id) FILTER (WHERE kind = 'DELIVERY')
FROM ledger_entry
WHERE {party} = $1 AND kind IN ('DELIVERY', 'REFUND') AND currency = 'CNY' AND {claim} IS NULL AND at >= $2 AND at < $3
"""


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    return parser.parse_args(argv)


async def timed(action: Callable[[], Awaitable[object]]) -> tuple[float, object]:
    started = time.perf_counter()
    result = await action()
    return (time.perf_counter() - started) * 1000, result


async def alternating(
    first: Callable[[], Awaitable[object]], second: Callable[[], Awaitable[object]], repeats: int
) -> tuple[list[float], object, list[float], object]:
    """Each path in turn, so drift in the machine's load falls on both alike."""
    a_times, b_times, a, b = [], [], None, None
    for _ in range(repeats):
        took, a = await timed(first)
        a_times.append(took)
        took, b = await timed(second)
        b_times.append(took)
    return a_times, a, b_times, b


async def measure(url: str, loaded: Loaded, repeats: int) -> tuple[list[tuple[str, ...]], list[str]]:
    from broker.memory import MemoryBroker
    from config import Settings
    from domain.settlement import Party
    from services.core.database import Database
    from services.core.unit_of_work import UnitOfWork
    from services.settlement import statements

    db = Database.connect(Settings(database_url=url))
    raw = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    try:
        for party, code, pk, column, claim in (
            (Party.CHANNEL, "bench-settle", loaded.channel_id, "channel_id", "channel_statement_id"),
            (Party.SUPPLIER, "bench-supplier", loaded.supplier_id, "supplier_id", "supplier_statement_id"),
        ):
            async def gateway() -> object:
                async with UnitOfWork(db, MemoryBroker()) as uow:
                    row = await statements.generate(uow, party, code, MONTH_START, MONTH_END, now=MONTH_END)
                    return (row.gross_fen, row.cost_fen, row.commission_fen, row.margin_fen, row.refunds_fen, row.order_count)

            sql = RAW.format(party=column, claim=claim)

            async def baseline() -> object:
                found = await raw.fetchrow(sql, pk, MONTH_START, MONTH_END)
                return tuple(int(v) for v in (found[0], found[1], found[2], found[3], found[4], found[7]))

            await gateway(), await baseline()  # warm both
            raw_times, raw_figures, gateway_times, figures = await alternating(baseline, gateway, repeats)
            if figures != raw_figures:
                raise SystemExit(f"the statement disagrees with the raw aggregate: {figures} != {raw_figures}")
            ratio = statistics.median(gateway_times) / statistics.median(raw_times)
            name = party.value.lower()
            rows.append((f"raw SQL aggregate, {name}", tables.ms(statistics.median(raw_times)), tables.ms(min(raw_times)), "1.00×"))
            rows.append((f"generateSettlementStatement, {name}", tables.ms(statistics.median(gateway_times)), tables.ms(min(gateway_times)), f"{ratio:.2f}×"))
        async with UnitOfWork(db, MemoryBroker()) as uow:
            row = await statements.generate(uow, Party.CHANNEL, "bench-settle", MONTH_START, MONTH_END, now=MONTH_END)
        started = time.perf_counter()
        async with UnitOfWork(db, MemoryBroker()) as uow:
            await statements.confirm(uow, row, now=MONTH_END)
        notes.append(f"confirming the channel statement (claiming {loaded.entries:,} entries, totals recomputed): "
                     f"{(time.perf_counter() - started) * 1000:,.0f} ms, once")
    finally:
        await raw.close()
        await db.dispose()
    return rows, notes


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder, bench_database("postgres", Path(folder), catalog=False) as env:
        url = env["QUANYI_DATABASE_URL"]
        loaded = asyncio.run(load(url, args.entries))
        print(f"loaded {loaded.entries:,} entries ({loaded.orders:,} orders, {loaded.lines:,} lines) in {loaded.seconds:.1f} s")
        rows, notes = asyncio.run(measure(url, loaded, args.repeats))
    header = ("path", "median ms", "best ms", "× raw")
    print(tables.text_table(header, rows))
    for note in notes:
        print(note)
    if not args.no_doc:
        write_section(args.doc, HEADING, section(header, rows, notes, loaded, args, load_before))
    return 0


def section(header: tuple[str, ...], rows: list[tuple[str, ...]], notes: list[str], loaded: Loaded,
            args: argparse.Namespace, load_before: float) -> str:
    return "\n".join([
        f"## {HEADING}",
        "",
        f"A month's statement over {loaded.entries:,} ledger entries ({loaded.orders:,} orders, {loaded.lines:,} delivered",
        "lines, one in ten refunded) of one channel and one supplier, on PostgreSQL, beside the same figures",
        "computed by one hand-written SQL statement over asyncpg in the same run.",
        "",
        "```",
        f"python bench/settlement.py --entries {args.entries} --repeats {args.repeats}",
        "```",
        "",
        f"- Machine: {machine(load_before)}.",
        f"- Entries bulk-loaded with COPY in {loaded.seconds:.1f} s, then `ANALYZE`. Each path runs once to warm, then",
        f"  {args.repeats} times; the statement's figures must equal the raw aggregate's or the run stops.",
        "- The statement path is the service behind `generateSettlementStatement`: a unit of work, the",
        "  idempotent upsert of the statement row, its row lock, one aggregate over the party's unclaimed",
        "  entries of the period (`ix_ledger_entry_channel_at` / `ix_ledger_entry_supplier_at`), the totals",
        "  stored, commit.",
        "",
        tables.markdown_table(header, rows),
        "",
        *[f"- {note}." for note in notes],
        "",
        "The statement here covers every row of the table, so both paths read all of them (a sequential",
        "scan); a statement of one channel among many would read only its rows through `ix_ledger_entry_channel_at`",
        "(not measured here). What the statement path adds to the aggregate is its unit of work (upsert, row",
        "lock, the totals written back, commit) and SQLAlchemy's statement handling. Confirming rewrites each",
        "claimed entry once (a new row version and its index entries under MVCC): tens of seconds for a",
        "million entries, once per statement.",
        "",
        "Aim: within 1.5× of the raw aggregate.",
    ])


if __name__ == "__main__":
    raise SystemExit(main())
