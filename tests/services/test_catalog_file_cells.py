"""A catalog CSV opens inert in a spreadsheet and still imports back to the same catalog."""

from __future__ import annotations

import csv
import io

import pytest

from services.catalog.catalog_file import dumps, loads
from services.core.csv_cells import FORMULA_STARTS

NAMES = ["=cmd|' /C calc'!A0", "+SUM(A1:A9)", "-2+3", "@IMPORT(x)", "\tmasked", "'quoted", "''twice", "plain 名字"]


@pytest.mark.parametrize("name", NAMES)
def test_a_text_a_spreadsheet_would_run_is_written_inert_and_read_back_as_it_was(name: str) -> None:
    record = {"type": "brand", "code": "acme", "name": name}

    written = dumps([record], "csv")

    header, row = list(csv.reader(io.StringIO(written.decode("utf-8"), newline="")))
    cell = row[header.index("name")]
    assert not cell.startswith(FORMULA_STARTS)
    assert [line.record for line in loads(written.decode("utf-8"), "csv")] == [record]
