"""Catalog files: JSON Lines (`.jsonl`, `.ndjson`) or CSV (`.csv`), one record per line.

JSON Lines: one object per line, the records of services/catalog/records.py. CSV: a header
of the columns in use, one record per row; lists and objects (components, a blind box's
pool, suppliers, pictures, attributes, account formats) are JSON in their cell, and an empty cell leaves
the field as it is (or at its default, for a new object). Both are written the one way,
so an exported file imported elsewhere exports back to the same bytes.

A CSV text cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR) is
written with a leading `'`, as every CSV of the gateway (services/core/csv_cells.py); so is a
text that itself begins with `'`, and reading drops one leading `'`: names round-trip
exactly, and an exported file opens inert.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from services.catalog.records import COLUMNS, KEYS
from services.core.csv_cells import FORMULA_STARTS

MAX_LINE = 1_000_000
_JSON_COLUMNS = {"imageUrls", "attributes", "rechargeAccountFormats", "components", "pool", "suppliers"}
_INT_COLUMNS = {"presaleCap", "serialUses", "position"}
_BOOL_COLUMNS = {"public", "active"}


class UnusableFile(ValueError):
    """The file cannot be read as a catalog at all (nothing is imported)."""


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 1-based line (CSV: the row's line, the header being line 1)
    record: dict[str, Any] | None
    error: str | None = None  # why the line is not a record


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise UnusableFile(f"{path.name}: a catalog file ends in .jsonl, .ndjson or .csv")


def write(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write the records; how many."""
    data = dumps(records, file_format(path))
    path.write_bytes(data)
    return data.count(b"\n") - (1 if file_format(path) == "csv" else 0)


def dumps(records: Iterable[dict[str, Any]], kind: str) -> bytes:
    if kind == "jsonl":
        return b"".join(orjson.dumps(record) + b"\n" for record in records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow([_cell(record.get(column)) for column in COLUMNS])
    return buffer.getvalue().encode("utf-8")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    text = str(value)
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def read(path: Path) -> list[Line]:
    if not path.is_file():
        raise UnusableFile(f"no such file: {path}")
    kind = file_format(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnusableFile(f"{path.name} is not UTF-8: {error}") from None
    return loads(text, kind)


def loads(text: str, kind: str) -> list[Line]:
    return _jsonl(text) if kind == "jsonl" else _csv(text)


def _jsonl(text: str) -> list[Line]:
    lines: list[Line] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE:
            lines.append(Line(number, None, f"longer than {MAX_LINE} characters"))
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            lines.append(Line(number, None, f"not JSON: {error}"))
            continue
        if not isinstance(value, dict):
            lines.append(Line(number, None, "a line is one JSON object"))
            continue
        lines.append(Line(number, value))
    return lines


def _csv(text: str) -> list[Line]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return []
    unknown = [name for name in header if name not in COLUMNS]
    if unknown or "type" not in header:
        raise UnusableFile(f"the header names unknown columns {unknown}" if unknown else "the header has no type column")
    lines: list[Line] = []
    for cells in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            lines.append(Line(number, None, f"{len(cells)} cells for {len(header)} columns"))
            continue
        record: dict[str, Any] = {}
        problem = None
        for name, cell in zip(header, cells, strict=True):
            if cell == "":
                continue
            value, problem = _typed(name, cell)
            if problem:
                break
            record[name] = value
        if problem:
            lines.append(Line(number, None, problem))
            continue
        kind = record.get("type")
        # A CSV row carries every column; those its type does not have are left empty.
        if kind in KEYS:
            stray = [name for name in record if name not in KEYS[kind]]
            if stray:
                lines.append(Line(number, None, f"a {kind} has no {', '.join(stray)}"))
                continue
        lines.append(Line(number, record))
    return lines


def _typed(name: str, cell: str) -> tuple[Any, str | None]:
    if name in _JSON_COLUMNS:
        try:
            return orjson.loads(cell), None
        except orjson.JSONDecodeError:
            return None, f"{name}: not JSON"
    if name in _INT_COLUMNS:
        return (int(cell), None) if cell.isascii() and cell.isdigit() else (cell, None)
    if name in _BOOL_COLUMNS:
        return {"true": True, "false": False}.get(cell, cell), None
    # The quote the writer put before a text a spreadsheet would run (or that began with one).
    return (cell[1:] if cell.startswith("'") else cell), None
