"""The accounts a top-up SKU accepts: a QQ number, a mainland mobile number, ... Pure.

A SKU names the formats it accepts (none: any account); `placeOrder` refuses an account
that matches none of them before anything is reserved, so a typo never reaches a supplier.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable


class AccountFormat(enum.Enum):
    PHONE = "PHONE"  # a mainland mobile number: 11 digits from 13x to 19x
    QQ = "QQ"  # 5 to 12 digits, no leading zero
    EMAIL = "EMAIL"
    NUMERIC = "NUMERIC"  # a game or platform user id: 4 to 20 digits


_PATTERNS = {
    AccountFormat.PHONE: re.compile(r"1[3-9][0-9]{9}"),
    AccountFormat.QQ: re.compile(r"[1-9][0-9]{4,11}"),
    AccountFormat.EMAIL: re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}"),
    AccountFormat.NUMERIC: re.compile(r"[0-9]{4,20}"),
}


def parse_formats(stored: str) -> tuple[AccountFormat, ...]:
    """The formats as stored ("QQ,PHONE"); unknown names are ignored."""
    known = {f.value: f for f in AccountFormat}
    return tuple(known[name] for name in stored.split(",") if name in known)


def store_formats(formats: Iterable[AccountFormat]) -> str:
    """One spelling for a set of formats: each once, in the enum's order."""
    chosen = set(formats)
    return ",".join(f.value for f in AccountFormat if f in chosen)


def accepts(formats: Iterable[AccountFormat], account: str) -> bool:
    """Whether `account` is one of `formats`; no formats accept any account."""
    wanted = tuple(formats)
    return not wanted or any(_PATTERNS[f].fullmatch(account.strip()) for f in wanted)


def describe(formats: Iterable[AccountFormat]) -> str:
    names = {
        AccountFormat.PHONE: "a mobile number", AccountFormat.QQ: "a QQ number",
        AccountFormat.EMAIL: "an email address", AccountFormat.NUMERIC: "a numeric user id",
    }
    return " or ".join(names[f] for f in formats)
