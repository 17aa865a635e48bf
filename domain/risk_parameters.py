"""The parameters each kind of risk rule takes, checked and put in one canonical form."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from domain.contacts import device_key, email_address, mainland_mobile
from domain.money import MAX_INPUT_AMOUNT, MoneyError, parse_amount
from domain.risk import MAX_WINDOW_SECONDS, Dimension, RuleKind

MAX_LIST = 10_000
_SCORE = re.compile(r"0\.[0-9]{1,3}")  # plain text only: no exponent, sign, spaces or other digits


class RuleParameterError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _int(params: Mapping[str, Any], name: str, low: int, high: int, default: int | None = None) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise RuleParameterError(f"parameters.{name}", f"{name} must be a whole number from {low} to {high}")
    return value


def _dimension(params: Mapping[str, Any], name: str, allowed: Iterable[Dimension]) -> Dimension:
    names = [d.value for d in allowed]
    value = params.get(name)
    if value not in names:
        raise RuleParameterError(f"parameters.{name}", f"{name} must be one of {', '.join(names)}")
    return Dimension(value)


def _strings(params: Mapping[str, Any], name: str) -> list[str]:
    """The entries trimmed, in the order given: an error names the entry as the operator sent it."""
    value = params.get(name)
    if not isinstance(value, list) or not value or len(value) > MAX_LIST:
        raise RuleParameterError(f"parameters.{name}", f"{name} must be a list of 1 to {MAX_LIST} strings")
    cleaned = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or len(item) > 128:
            raise RuleParameterError(f"parameters.{name}.{index}", "each entry is a non-empty string of at most 128 characters")
        cleaned.append(item.strip())
    return cleaned


def _listed(dimension: Dimension, value: str) -> str:
    """A blacklist entry in the form the buyer's facts take (domain/contacts.py), whatever its spelling."""
    if dimension is Dimension.IP:
        ipaddress.ip_network(value, strict=False)  # ValueError: not an address or network
        return value
    if dimension is Dimension.PHONE:
        return mainland_mobile(value)
    if dimension is Dimension.EMAIL:
        return email_address(value)
    if dimension is Dimension.DEVICE:
        return device_key(value)
    return value


_NOT_LISTABLE = {
    Dimension.IP: "is not an IP address or network",
    Dimension.PHONE: "is not a mainland China mobile number (11 digits starting 13 to 19)",
    Dimension.EMAIL: "is not an email address",
}


def _bool(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise RuleParameterError(f"parameters.{name}", f"{name} must be true or false")
    return value


_KNOWN = {
    RuleKind.VELOCITY: {"dimension", "limit", "windowSeconds"},
    RuleKind.PHONE_SEGMENT: {"prefixes"},
    RuleKind.BLACKLIST: {"dimension", "values"},
    RuleKind.AMOUNT_LIMIT: {"max"},
    RuleKind.QUANTITY_LIMIT: {"max"},
    RuleKind.ACCOUNT_SPREAD: {"by", "maxAccounts", "windowSeconds", "couponOnly", "maxAccountAgeDays"},
    RuleKind.MODEL: {"threshold", "shadow"},
}


def _probability(params: Mapping[str, Any], name: str) -> str:
    """A score threshold as text, strictly between 0 and 1 with at most three places: "0.850"."""
    raw = params.get(name)
    value = Decimal(raw) if isinstance(raw, str) and _SCORE.fullmatch(raw) else None
    if value is None or not 0 < value < 1:
        raise RuleParameterError(f"parameters.{name}", f"{name} is a score between 0 and 1 with at most three places, e.g. \"0.85\"")
    return f"{value:.3f}"


def check_parameters(kind: RuleKind, params: object) -> dict[str, Any]:
    """The parameters in their canonical form, or RuleParameterError naming the bad one."""
    if not isinstance(params, Mapping):
        raise RuleParameterError("parameters", "parameters must be an object")
    unknown = sorted(set(params) - _KNOWN[kind])
    if unknown:
        raise RuleParameterError(f"parameters.{unknown[0]}", f"{kind.value} rules take no {unknown[0]!r}")
    if kind is RuleKind.VELOCITY:
        return {
            "dimension": _dimension(params, "dimension", [Dimension.IP, Dimension.PHONE, Dimension.ACCOUNT, Dimension.DEVICE]).value,
            "limit": _int(params, "limit", 1, 1_000_000),
            "windowSeconds": _int(params, "windowSeconds", 1, MAX_WINDOW_SECONDS),
        }
    if kind is RuleKind.PHONE_SEGMENT:
        prefixes = _strings(params, "prefixes")
        for index, prefix in enumerate(prefixes):
            if not (prefix.isascii() and prefix.isdigit()) or len(prefix) > 11:
                raise RuleParameterError(f"parameters.prefixes.{index}", "a prefix is 1 to 11 digits")
        return {"prefixes": sorted(set(prefixes))}
    if kind is RuleKind.BLACKLIST:
        dimension = _dimension(params, "dimension", list(Dimension))
        values = []
        for index, value in enumerate(_strings(params, "values")):
            try:
                values.append(_listed(dimension, value))
            except ValueError:  # domain.contacts.ContactError is one
                raise RuleParameterError(f"parameters.values.{index}", f"{value!r} {_NOT_LISTABLE[dimension]}") from None
        return {"dimension": dimension.value, "values": sorted(set(values))}
    if kind is RuleKind.AMOUNT_LIMIT:
        raw = params.get("max")
        try:
            # Text as every money input takes it ("1e3", " 50 ", "５０" are not amounts); a JSON integer is exact.
            amount = parse_amount(raw) if isinstance(raw, str) else Decimal(raw) if type(raw) is int else None
        except MoneyError:
            amount = None
        if amount is None or amount <= 0 or amount > MAX_INPUT_AMOUNT:
            raise RuleParameterError("parameters.max", "max is a positive amount with at most two decimals, e.g. \"500.00\"")
        return {"max": f"{amount:.2f}"}
    if kind is RuleKind.QUANTITY_LIMIT:
        return {"max": _int(params, "max", 1, 1_000_000)}
    if kind is RuleKind.MODEL:
        return {"threshold": _probability(params, "threshold"), "shadow": _bool(params, "shadow", True)}
    return {
        "by": _dimension(params, "by", [Dimension.DEVICE, Dimension.PHONE, Dimension.IP]).value,
        "maxAccounts": _int(params, "maxAccounts", 1, 10_000),
        "windowSeconds": _int(params, "windowSeconds", 1, MAX_WINDOW_SECONDS),
        "couponOnly": _bool(params, "couponOnly", False),
        "maxAccountAgeDays": _int(params, "maxAccountAgeDays", 0, 3650, 0),
    }
