"""Reading card codes from a CSV file: the header, then one CodeInput (or rejection) a row.

Row numbers are the file's line numbers, so the header is row 1 and the first code
row 2, as a spreadsheet shows them. Bytes that are not UTF-8 do not stop the file:
the row they are in is rejected.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

from domain.card_codes import CodeInput, Rejection, RowRejection

# Column names an operator may use, English or as Chinese suppliers' sheets name them.
COLUMNS = {
    "secret": "secret",
    "卡密": "secret",
    "number": "number",
    "卡号": "number",
    "expires_at": "expires_at",
    "expiresat": "expires_at",
    "有效期": "expires_at",
    "uses": "uses",
    "次数": "uses",
}


class UnusableInput(ValueError):
    """The import cannot start: no such file or SKU, an empty file, a header we do not know."""


@dataclass(frozen=True)
class Layout:
    """Which cell holds which field; a header-less file is one column of secrets."""

    positions: dict[str, int]
    has_header: bool


def open_codes(path: Path) -> TextIO:
    # utf-8-sig: spreadsheets often start the file with a byte-order mark.
    return path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")


def count_lines(path: Path) -> int:
    """Lines in the file, for a progress bar; cheap even for a million rows."""
    lines, last = 0, b"\n"
    with path.open("rb") as raw:
        while chunk := raw.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def layout_of(first: list[str]) -> Layout:
    """The layout from the file's first row; raises UnusableInput if it is not one we read."""
    names = [cell.strip().lower().replace(" ", "_") for cell in first]
    known = [COLUMNS.get(name) for name in names]
    if any(known):
        unknown = [cell for cell, field in zip(first, known, strict=True) if field is None]
        if unknown:
            raise UnusableInput(
                f"unknown column {unknown[0].strip()!r}: the columns are secret, number, expires_at and uses"
            )
        fields = [field for field in known if field is not None]
        if len(set(fields)) != len(fields):
            raise UnusableInput("a column is named twice in the header")
        if "secret" not in fields:
            raise UnusableInput("the header has no secret column")
        return Layout({field: index for index, field in enumerate(fields)}, has_header=True)
    if len(first) == 1:
        return Layout({"secret": 0}, has_header=False)
    raise UnusableInput(
        "the first row must be a header naming the columns (secret, number, expires_at, uses), "
        "or the file must be a single column of secrets"
    )


class CodeRows:
    """The code rows of a CSV file, after its header: (row number, entry) pairs.

    An entry is a CodeInput to check, a RowRejection for a row that could not be read,
    or None for a blank line (no data: counted, not imported).
    """

    def __init__(self, stream: TextIO) -> None:
        self._reader = csv.reader(stream)
        self._first: tuple[int, list[str]] | None = None
        for row, cells in self._records():
            if isinstance(cells, csv.Error):
                raise UnusableInput(f"row {row} is not a well-formed CSV row: {cells}")
            if any(cell.strip() for cell in cells):
                self.layout = layout_of(cells)
                self._first = None if self.layout.has_header else (row, cells)
                return
        raise UnusableInput("the file has no rows")

    def __iter__(self) -> Iterator[tuple[int, CodeInput | RowRejection | None]]:
        if self._first is not None:
            yield self._first[0], parse_row(*self._first, self.layout)
        for row, record in self._records():
            if isinstance(record, csv.Error):
                yield row, malformed(row, record)
            elif not any(cell.strip() for cell in record):
                yield row, None
            else:
                yield row, parse_row(row, record, self.layout)

    def _records(self) -> Iterator[tuple[int, list[str] | csv.Error]]:
        while True:
            before = self._reader.line_num
            try:
                cells = next(self._reader)
            except StopIteration:
                return
            except csv.Error as error:
                if self._reader.line_num == before:
                    raise UnusableInput(f"cannot read past row {before}: {error}") from None
                yield self._reader.line_num, error
                continue
            yield self._reader.line_num, cells


def parse_row(row: int, cells: list[str], layout: Layout) -> CodeInput | RowRejection:
    if len(cells) > len(layout.positions):
        return RowRejection(
            row,
            None,
            Rejection.WRONG_FIELD_COUNT,
            f"{len(cells)} fields where the header has {len(layout.positions)}",
        )

    def cell(name: str) -> str:
        index = layout.positions.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    uses_text, expires_text = cell("uses"), cell("expires_at")
    try:
        uses = int(uses_text) if uses_text else None
    except ValueError:
        return RowRejection(row, "uses", Rejection.INVALID_USES, "uses must be a whole number")
    try:
        expires_at = datetime.fromisoformat(expires_text) if expires_text else None
    except ValueError:
        return RowRejection(
            row,
            "expires_at",
            Rejection.INVALID_TIME,
            "expires_at must be an ISO 8601 time, e.g. 2027-12-31T23:59:59+08:00",
        )
    return CodeInput(
        row=row,
        secret=cell("secret"),
        number=cell("number") or None,
        expires_at=expires_at,
        uses=uses,
    )


def malformed(row: int, error: csv.Error) -> RowRejection:
    # csv.Error messages describe the syntax ("line contains NUL"), never the content.
    return RowRejection(row, None, Rejection.MALFORMED_ROW, f"not a well-formed CSV row: {error}")
