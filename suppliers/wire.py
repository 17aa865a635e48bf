"""The JSON the HTTP adapter and the simulated supplier exchange.

    POST /topups         {"request_id", "product", "account", "quantity",
                          "face_value": "50.00", "currency": "CNY", "callback_url"}
    answer, query and callback bodies:
                         {"request_id", "status", "reference", "message"}
    GET /balance         {"balance": "1000.00", "currency": "CNY"}

`status` is SUCCEEDED, FAILED or PENDING; a query of a request the supplier never received
answers 404 with status NOT_FOUND. Amounts are decimal strings, never JSON numbers.
"""

from __future__ import annotations

from typing import Any

import orjson

from domain.money import Money, MoneyError
from suppliers.base import Outcome, Result, TopUp

_REPORTED = {Outcome.SUCCEEDED, Outcome.FAILED, Outcome.PENDING}
_TEXT_LIMIT = 200
_REFERENCE_LIMIT = 128  # what supplier_attempt.supplier_reference and topup_task keep


class WireError(ValueError):
    """A body that is not what the protocol says."""


def mask_account(account: str) -> str:
    """Enough of an account to recognise it in a log, not enough to use it."""
    if len(account) <= 4:
        return "*" * len(account)
    shown = 4 if len(account) >= 8 else 2
    return "*" * (len(account) - shown) + account[-shown:]


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WireError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise WireError("the body is not a JSON object")
    return data


def _text(data: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise WireError(f"{name} must be a non-empty string")
    return value


def topup_body(topup: TopUp) -> bytes:
    return orjson.dumps(
        {
            "request_id": topup.request_id,
            "product": topup.product,
            "account": topup.account,
            "quantity": topup.quantity,
            "face_value": str(topup.face_value.amount),
            "currency": topup.face_value.currency,
            "callback_url": topup.callback_url,
        }
    )


def parse_topup(body: bytes) -> TopUp:
    data = _object(body)
    quantity = data.get("quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise WireError("quantity must be a positive whole number")
    try:
        face_value = Money.of(_text(data, "face_value"), _text(data, "currency"))
    except MoneyError as error:
        raise WireError(f"face_value: {error}") from None
    callback_url = _text(data, "callback_url", required=False) or None
    return TopUp(
        request_id=_text(data, "request_id"),
        product=_text(data, "product"),
        account=_text(data, "account"),
        quantity=quantity,
        face_value=face_value,
        callback_url=callback_url,
    )


def result_body(result: Result) -> bytes:
    return orjson.dumps(
        {
            "request_id": result.request_id,
            "status": result.outcome.value,
            "reference": result.supplier_reference,
            "message": result.message,
        }
    )


def parse_result(body: bytes, *, allowed: set[Outcome] = _REPORTED) -> Result:
    data = _object(body)
    try:
        outcome = Outcome(_text(data, "status"))
    except ValueError:
        raise WireError("status is not one the protocol knows") from None
    if outcome not in allowed:
        raise WireError(f"status {outcome.value} is not expected here")
    reference = data.get("reference")
    if reference is not None and (not isinstance(reference, str) or len(reference) > _REFERENCE_LIMIT):
        raise WireError(f"reference must be a string of at most {_REFERENCE_LIMIT} characters")
    return Result(
        outcome=outcome,
        request_id=_text(data, "request_id"),
        supplier_reference=reference,
        message=_text(data, "message", required=False)[:_TEXT_LIMIT],
    )


def message_of(body: bytes) -> str:
    """The supplier's reason in an error answer, if it gave one; short, for operators."""
    try:
        return _text(_object(body), "message", required=False)[:_TEXT_LIMIT]
    except WireError:
        return ""


def balance_body(balance: Money) -> bytes:
    return orjson.dumps({"balance": str(balance.amount), "currency": balance.currency})


def parse_balance(body: bytes) -> Money:
    data = _object(body)
    try:
        return Money.of(_text(data, "balance"), _text(data, "currency"))
    except MoneyError as error:
        raise WireError(f"balance: {error}") from None
