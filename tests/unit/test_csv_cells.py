"""A CSV cell a spreadsheet could run as a formula is written as text (OWASP's rule)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from services.core.csv_cells import safe_cell, safe_row


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("TB-1", "TB-1"),
        ("a=b", "a=b"),
        ("'=already", "'=already"),
        ("", ""),
        (None, ""),
        (7, 7),
        (-3, -3),
        (Decimal("-5.00"), Decimal("-5.00")),
    ],
)
def test_a_cell_that_begins_like_a_formula_gets_a_quote(given: object, written: object) -> None:
    assert safe_cell(given) == written  # type: ignore[arg-type]


def test_a_written_row_reads_back_inert() -> None:
    out = io.StringIO()
    csv.writer(out).writerow(safe_row(["=cmd|' /C calc'!A0", 3, Decimal("-1.50"), None]))

    assert next(csv.reader(io.StringIO(out.getvalue()))) == ["'=cmd|' /C calc'!A0", "3", "-1.50", ""]
