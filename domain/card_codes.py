"""What an imported card code must look like before it joins a pool.

Messages never quote the secret: a rejection may be shown, logged or written to a
file, and a code's plain text must not travel with it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from domain.catalog import SkuKind
from domain.instants import InstantError, check_instant

MAX_SECRET_LENGTH = 256
MAX_NUMBER_LENGTH = 128
MAX_USES = 2**31 - 1  # what the database's integer holds


class Rejection(enum.Enum):
    SECRET_REQUIRED = "SECRET_REQUIRED"
    SECRET_TOO_LONG = "SECRET_TOO_LONG"
    NOT_PRINTABLE = "NOT_PRINTABLE"
    NOT_UTF8 = "NOT_UTF8"
    NUMBER_TOO_LONG = "NUMBER_TOO_LONG"
    INVALID_USES = "INVALID_USES"
    INVALID_TIME = "INVALID_TIME"
    ALREADY_EXPIRED = "ALREADY_EXPIRED"
    WRONG_FIELD_COUNT = "WRONG_FIELD_COUNT"
    MALFORMED_ROW = "MALFORMED_ROW"
    DUPLICATE_CODE = "DUPLICATE_CODE"


@dataclass(frozen=True, slots=True)
class CodeInput:
    """One code as an operator gave it; `row` is where it came from (list index, CSV row)."""

    row: int
    secret: str
    number: str | None = None
    expires_at: datetime | None = None
    uses: int | None = None


@dataclass(frozen=True, slots=True)
class CleanCode:
    row: int
    secret: str
    number: str | None
    expires_at: datetime | None
    uses: int


@dataclass(frozen=True, slots=True)
class RowRejection:
    """Why one row was not imported. `field` is secret, number, expires_at, uses or None."""

    row: int
    field: str | None
    reason: Rejection
    message: str


def _unprintable(row: int, field: str, text: str, what: str) -> RowRejection:
    # A file's bytes that were not UTF-8 arrive as lone surrogates, which are not printable either.
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return RowRejection(row, field, Rejection.NOT_UTF8, f"{what} is not valid UTF-8")
    return RowRejection(
        row, field, Rejection.NOT_PRINTABLE, f"{what} contains a control or invisible character"
    )


def check_code(code: CodeInput, kind: SkuKind, now: datetime) -> CleanCode | RowRejection:
    """The code trimmed and completed, or the first thing wrong with it."""

    def reject(field: str | None, reason: Rejection, message: str) -> RowRejection:
        return RowRejection(code.row, field, reason, message)

    secret = code.secret.strip()
    if not secret:
        return reject("secret", Rejection.SECRET_REQUIRED, "the secret is empty")
    if len(secret) > MAX_SECRET_LENGTH:
        return reject(
            "secret",
            Rejection.SECRET_TOO_LONG,
            f"a secret is at most {MAX_SECRET_LENGTH} characters",
        )
    if not secret.isprintable():
        return _unprintable(code.row, "secret", secret, "the secret")

    number = (code.number or "").strip() or None
    if number is not None:
        if len(number) > MAX_NUMBER_LENGTH:
            return reject(
                "number",
                Rejection.NUMBER_TOO_LONG,
                f"a card number is at most {MAX_NUMBER_LENGTH} characters",
            )
        if not number.isprintable():
            return _unprintable(code.row, "number", number, "the card number")

    uses = 1 if code.uses is None else code.uses
    if not 1 <= uses <= MAX_USES:
        return reject("uses", Rejection.INVALID_USES, f"uses must be from 1 to {MAX_USES:,}")
    if uses > 1 and kind is not SkuKind.SERIAL:
        return reject(
            "uses", Rejection.INVALID_USES, "only a SERIAL SKU's codes have more than one use"
        )

    if code.expires_at is not None:
        if code.expires_at.tzinfo is None:
            return reject(
                "expires_at",
                Rejection.INVALID_TIME,
                "give the time zone, e.g. 2027-12-31T23:59:59+08:00",
            )
        try:
            check_instant(code.expires_at)
        except InstantError as error:
            return reject("expires_at", Rejection.INVALID_TIME, str(error))
        if code.expires_at <= now:
            return reject("expires_at", Rejection.ALREADY_EXPIRED, "the code has already expired")

    return CleanCode(code.row, secret, number, code.expires_at, uses)


def duplicate(row: int, *, earlier_in_import: bool) -> RowRejection:
    """A row whose secret is already in the pool, or earlier in the same import."""
    message = (
        "the same code appears earlier in this import"
        if earlier_in_import
        else "the code is already in the pool"
    )
    return RowRejection(row, "secret", Rejection.DUPLICATE_CODE, message)
