"""What an operator may write into the catalog: codes, names, texts, pictures, attributes,
amounts. Pure: every check reports a field-level problem instead of raising on the first.

Codes name objects across systems (a catalog file matches on them, partners quote them), so
each has exactly one spelling: ASCII letters and digits with inner separators, folded to one
case, surrounding spaces dropped. A code in another spelling ("Tencent", " tencent ") folds
to the same code and is then a duplicate; one that cannot fold ("ｔｅｎｃｅｎｔ" in full-width
letters, a Cyrillic "е", a zero-width space) is refused. Never a second, look-alike object.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from domain.money import Money, MoneyError

MAX_NAME = 200
MAX_DESCRIPTION = 5000
MAX_IMAGES = 10
MAX_URL = 500
MAX_ATTRIBUTES = 30
MAX_ATTRIBUTE_NAME = 64
MAX_ATTRIBUTE_VALUE = 500


class CodeKind(enum.Enum):
    """The spelling rules of one kind of code: pattern, case and length."""

    SLUG = (re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*"), str.lower, 120, "lower-case letters, digits and inner hyphens")
    CODE = (re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*"), str.lower, 64, "lower-case letters, digits and inner - or _")
    SKU = (re.compile(r"[A-Z0-9]+(?:[-_.][A-Z0-9]+)*"), str.upper, 64, "letters, digits and inner - _ or .")


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str
    code: str


class CatalogRefused(Exception):
    """A catalog command that changed nothing, and every reason why."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = list(problems)


def refused(field: str, message: str, code: str) -> CatalogRefused:
    return CatalogRefused([Problem(field, message, code)])


def fold_code(value: str, kind: CodeKind) -> str | None:
    """The one spelling of a code, or None when `value` cannot be one."""
    pattern, case, limit, _ = kind.value
    if not isinstance(value, str):
        return None
    folded = case(value.strip(" \t"))
    if len(folded) > limit or not folded.isascii() or not pattern.fullmatch(folded):
        return None
    return folded


def _printable(text: str, *, newlines: bool = False) -> bool:
    allowed = "\n\t" if newlines else ""
    return all(ch.isprintable() or ch in allowed for ch in text)


@dataclass
class Checker:
    """Collects the problems of one command (or one row of a file, with `prefix`)."""

    prefix: str = ""
    problems: list[Problem] = field(default_factory=list)

    def add(self, field_name: str, message: str, code: str) -> None:
        self.problems.append(Problem(f"{self.prefix}{field_name}", message, code))

    def raise_if_any(self) -> None:
        if self.problems:
            raise CatalogRefused(self.problems)

    def code(self, field_name: str, value: Any, kind: CodeKind) -> str:
        folded = fold_code(value, kind) if isinstance(value, str) else None
        if folded is None:
            _, _, limit, rule = kind.value
            if isinstance(value, str) and len(value.strip()) > limit:
                self.add(field_name, f"at most {limit} characters", "TOO_LONG")
            else:
                self.add(field_name, f"a code is {rule}", "INVALID_CODE")
            return ""
        return folded

    def name(self, field_name: str, value: Any, limit: int = MAX_NAME) -> str:
        if not isinstance(value, str) or not value.strip():
            self.add(field_name, "give a name", "REQUIRED")
            return ""
        text = value.strip()
        if len(text) > limit:
            self.add(field_name, f"at most {limit} characters", "TOO_LONG")
        elif not _printable(text):
            self.add(field_name, "no control characters or line breaks", "INVALID_TEXT")
        return text

    def text(self, field_name: str, value: Any, limit: int = MAX_DESCRIPTION) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            self.add(field_name, "give text", "INVALID_TEXT")
            return ""
        text = value.strip()
        if len(text) > limit:
            self.add(field_name, f"at most {limit} characters", "TOO_LONG")
        elif not _printable(text, newlines=True):
            self.add(field_name, "no control characters", "INVALID_TEXT")
        return text

    def image_urls(self, field_name: str, value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list | tuple) or len(value) > MAX_IMAGES:
            self.add(field_name, f"a list of at most {MAX_IMAGES} URLs", "TOO_MANY")
            return []
        urls: list[str] = []
        for index, url in enumerate(value):
            where = f"{field_name}.{index}"
            if not isinstance(url, str) or len(url) > MAX_URL:
                self.add(where, f"a URL of at most {MAX_URL} characters", "TOO_LONG")
                continue
            url = url.strip()
            parts = urlsplit(url) if url.isascii() and _printable(url) and " " not in url else None
            if parts is None or parts.scheme != "https" or not parts.hostname:
                self.add(where, "an https:// URL, without spaces", "INVALID_URL")
                continue
            urls.append(url)
        if len(set(urls)) != len(urls):
            self.add(field_name, "each picture once", "DUPLICATE")
        return urls

    def attributes(self, field_name: str, value: Any) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, Mapping) or len(value) > MAX_ATTRIBUTES:
            self.add(field_name, f"an object of at most {MAX_ATTRIBUTES} names and texts", "TOO_MANY")
            return {}
        found: dict[str, str] = {}
        for name, text in value.items():
            where = f"{field_name}.{name}"
            if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_ATTRIBUTE_NAME or not _printable(name):
                self.add(where, f"a name of 1 to {MAX_ATTRIBUTE_NAME} printable characters", "INVALID_ATTRIBUTE")
                continue
            if not isinstance(text, str) or len(text) > MAX_ATTRIBUTE_VALUE or not _printable(text):
                self.add(where, f"a text of at most {MAX_ATTRIBUTE_VALUE} printable characters", "INVALID_ATTRIBUTE")
                continue
            if name.strip() in found:
                self.add(where, "each name once", "DUPLICATE")
            found[name.strip()] = text.strip()
        # Stored and compared in one order, so the same attributes are the same value.
        return dict(sorted(found.items()))

    def money(self, field_name: str, value: Any, currency: str, *, positive: bool = False) -> Money | None:
        """An amount in `currency`: never negative, more than zero when `positive`."""
        if value is None:
            return None
        try:
            # A decimal string (or an integer); a JSON number with a fraction is a float: refused.
            amount = Money.of(value, currency)
        except MoneyError as error:
            self.add(field_name, f"{error}; give amounts as decimal strings, e.g. \"9.90\"", "INVALID_AMOUNT")
            return None
        if amount.minor < 0:
            self.add(field_name, "an amount cannot be negative", "NEGATIVE_AMOUNT")
            return None
        if positive and amount.minor == 0:
            self.add(field_name, "a price is more than zero", "PRICE_NOT_POSITIVE")
            return None
        return amount

    def count(self, field_name: str, value: Any, *, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.add(field_name, f"a whole number from {low} to {high}", "OUT_OF_RANGE")
            return low
        return value

    def version(self, value: Any) -> int:
        return self.count("version", value, low=1, high=2**31 - 1)
