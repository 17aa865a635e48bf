"""Reconciliation: the other side's records against a statement, stored as a report."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.money import Money
from domain.settlement import (
    MAX_RECORDS,
    Discrepancy,
    Record,
    RowError,
    StatementStatus,
    check_records,
    parse_record,
    reconcile,
)
from models import Reconciliation, ReconciliationItem, SettlementStatement
from services.core.unit_of_work import UnitOfWork
from services.settlement import figures

MAX_CSV_BYTES = 1024 * 1024
CSV_HEADER = ("external_order_number", "amount", "status")

DELIVERED, REFUNDED = "DELIVERED", "REFUNDED"


@dataclass(frozen=True, slots=True)
class Filed:
    report: Reconciliation | None
    errors: list[RowError]


def parse_csv(text: str, currency: str) -> list[Record | RowError]:
    """Rows of `external_order_number,amount,status` after a header row; row 1 is the first record."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(c.strip().lower() for c in header) != CSV_HEADER:
        return [RowError(0, "header", f"the first line is the header {','.join(CSV_HEADER)}", "INVALID_HEADER")]
    parsed: list[Record | RowError] = []
    for row, cells in enumerate(reader, start=1):
        if len(parsed) > MAX_RECORDS:
            break  # enough to say there are too many
        if not cells or all(not c.strip() for c in cells):
            continue
        if len(cells) != 3:
            parsed.append(RowError(row, "row", f"row {row}: three fields expected, found {len(cells)}"))
            continue
        parsed.append(parse_record(row, *cells, currency=currency))
    return parsed


async def file_report(
    uow: UnitOfWork, statement: SettlementStatement, parsed: list[Record | RowError], *, actor: str, now: datetime
) -> Filed:
    """Compare and store; with any bad row nothing is stored and every bad row is reported."""
    records, errors = check_records(parsed)
    if errors:
        return Filed(None, errors)
    session = uow.session
    ours = [
        Record(o.number, Money(o.amount, statement.currency), REFUNDED if o.refunded_all else DELIVERED)
        for o in await figures.order_amounts(session, statement)
    ]
    findings = reconcile(ours, records)
    counts = Counter(f.kind for f in findings)
    mismatched = {f.order_number for f in findings}
    report = Reconciliation(
        statement_id=statement.id, actor=actor, at=now, records=len(records),
        matched=sum(1 for r in records if r.order_number not in mismatched),
        missing_on_their_side=counts[Discrepancy.MISSING_ON_THEIR_SIDE],
        missing_on_our_side=counts[Discrepancy.MISSING_ON_OUR_SIDE],
        amount_mismatches=counts[Discrepancy.AMOUNT_MISMATCH],
        status_mismatches=counts[Discrepancy.STATUS_MISMATCH],
    )
    session.add(report)
    await session.flush()
    session.add_all(
        ReconciliationItem(
            reconciliation_id=report.id, kind=f.kind, order_number=f.order_number,
            our_amount_fen=f.ours.amount.minor if f.ours else None,
            their_amount_fen=f.theirs.amount.minor if f.theirs else None,
            our_status=f.ours.status if f.ours else None, their_status=f.theirs.status if f.theirs else None,
        )
        for f in findings
    )
    await session.flush()
    return Filed(report, [])


async def reports_of(session: AsyncSession, statement_ids: list[int]) -> dict[int, list[Reconciliation]]:
    found: dict[int, list[Reconciliation]] = {pk: [] for pk in statement_ids}
    for row in await session.scalars(
        select(Reconciliation).where(Reconciliation.statement_id.in_(statement_ids)).order_by(Reconciliation.id.desc())
    ):
        found[row.statement_id].append(row)
    return found


async def items_of(session: AsyncSession, report_id: int) -> list[ReconciliationItem]:
    return list(await session.scalars(
        select(ReconciliationItem).where(ReconciliationItem.reconciliation_id == report_id).order_by(ReconciliationItem.id)
    ))


async def open_discrepancies(session: AsyncSession) -> tuple[int, int]:
    """(statements whose latest report found differences, differences in those reports),
    over statements not yet paid: what the dashboard shows."""
    latest = (
        select(func.max(Reconciliation.id).label("id"))
        .join(SettlementStatement, SettlementStatement.id == Reconciliation.statement_id)
        .where(SettlementStatement.status != StatementStatus.PAID)
        .group_by(Reconciliation.statement_id)
        .subquery()
    )
    differences = (
        Reconciliation.missing_on_their_side + Reconciliation.missing_on_our_side
        + Reconciliation.amount_mismatches + Reconciliation.status_mismatches
    )
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(differences), 0))
            .select_from(Reconciliation)
            .join(latest, latest.c.id == Reconciliation.id)
            .where(differences > 0)
        )
    ).one()
    return int(row[0]), int(row[1])
