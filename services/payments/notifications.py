"""Payment notifications from the payment provider: verified, checked, applied once.

A notification is signed with HMAC-SHA256 over `"{timestamp}.{raw body}"`. It pays its
order, or is owed back when the order cannot take it (services/payments/receipts.py), in
the same transaction that records its id, so the unique notification id decides between a
delivery and its replays, however many arrive at once.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from domain.money import Money, MoneyError
from domain.orders import OrderStatus
from models import Order, PaymentNotification
from services.core.unit_of_work import UnitOfWork
from services.payments import receipts

SIGNATURE_SCHEME = "v1"
MAX_SIGNATURES = 4
ACTOR_PREFIX = "webhook:"
# The audit actor is `webhook:<id>` in a 120-character column.
MAX_NOTIFICATION_ID = 120 - len(ACTOR_PREFIX)

# Printable ASCII without spaces: ids and numbers end up in logs and audit rows.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class SignatureRejected(Exception):
    """The delivery is not provably from the provider, or not from now."""


class MalformedNotification(ValueError):
    """Signed, but not a payment notification we can read."""


def sign(secret: bytes, timestamp: int | str, body: bytes) -> str:
    """The `X-Quanyi-Signature` value for a body sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def verify(
    secret: bytes, timestamp: str | None, signature: str | None, body: bytes, *, now: datetime, tolerance: int
) -> None:
    """Raise SignatureRejected unless `signature` signs `body` at a `timestamp` near `now`.

    The timestamp is inside the signed text, so an old delivery cannot be given a fresh
    one; the tolerance bounds how long a captured delivery stays usable at all.
    """
    if not secret:
        raise SignatureRejected("no webhook secret is configured")
    if not timestamp or not signature:
        raise SignatureRejected("X-Quanyi-Timestamp and X-Quanyi-Signature are required")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureRejected("X-Quanyi-Timestamp is unix seconds")
    if abs(now.timestamp() - int(timestamp)) > tolerance:
        raise SignatureRejected("the timestamp is outside the accepted window")
    expected = sign(secret, timestamp, body).encode()
    # Several comma-separated signatures let the sender overlap an old and a new secret.
    offered = [part.strip().encode() for part in signature.split(",")[:MAX_SIGNATURES]]
    matched = False
    for candidate in offered:
        matched |= hmac.compare_digest(candidate, expected)  # constant time, and no early exit
    if not matched:
        raise SignatureRejected("the signature does not match")


@dataclass(frozen=True, slots=True)
class Notification:
    id: str
    order_number: str
    payment_reference: str
    amount: str  # a plain decimal string; checked against the order's currency later
    currency: str

    @property
    def actor(self) -> str:
        return f"{ACTOR_PREFIX}{self.id}"


def parse(body: bytes) -> Notification:
    """The notification in a verified body; MalformedNotification if it is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedNotification("the body is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedNotification("the body is a JSON object")
    notification_id = _token(data, "id", MAX_NOTIFICATION_ID)
    order_number = _token(data, "orderNumber", 64)
    reference = data.get("paymentReference")
    if not isinstance(reference, str) or not 1 <= len(reference.strip()) <= 128:
        raise MalformedNotification("paymentReference is a string of 1 to 128 characters")
    amount = data.get("amount")
    if not isinstance(amount, str) or not _AMOUNT.fullmatch(amount):
        raise MalformedNotification('amount is a decimal string such as "19.80"')
    currency = data.get("currency")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise MalformedNotification("currency is a three-letter ISO code")
    return Notification(notification_id, order_number, reference.strip(), amount, currency)


def _token(data: dict[str, object], name: str, longest: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= longest or not _TOKEN.fullmatch(value):
        raise MalformedNotification(f"{name} is 1 to {longest} printable characters without spaces")
    return value


class Result(enum.Enum):
    PAID = "paid"
    ALREADY_PAID = "already_paid"  # the order was paid with this reference before: harmless
    DUPLICATE = "duplicate"  # this notification id was applied before: nothing changes
    REFUND_REQUESTED = "refund_requested"  # accepted, but the order cannot take it: owed back
    UNKNOWN_ORDER = "unknown_order"
    AMOUNT_MISMATCH = "amount_mismatch"


@dataclass(frozen=True, slots=True)
class Handled:
    result: Result
    code: str = ""
    message: str = ""


async def apply(uow: UnitOfWork, notification: Notification, *, now: datetime) -> Handled:
    """Pay the notification's order, or owe the payment back, and record the notification:
    all or nothing."""
    session = uow.session
    seen = await session.scalar(
        select(PaymentNotification.id).where(PaymentNotification.notification_id == notification.id)
    )
    if seen is not None:
        return Handled(Result.DUPLICATE)
    # Locked: concurrent deliveries for one order, and its cancel or expiry, queue here.
    order = await session.scalar(
        select(Order)
        .where(Order.number == notification.order_number)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if order is None:
        return Handled(Result.UNKNOWN_ORDER, "UNKNOWN_ORDER", "no such order")
    if not _pays_exactly(notification, order):
        return Handled(Result.AMOUNT_MISMATCH, "AMOUNT_MISMATCH", "the amount or currency is not the order's total")
    was_pending = order.status is OrderStatus.PENDING_PAYMENT
    receipt = await receipts.receive(
        uow, order, notification.payment_reference, amount_fen=order.total_fen, actor=notification.actor, now=now,
    )
    session.add(PaymentNotification(notification_id=notification.id, order_id=order.id, received_at=now))
    try:
        await session.flush()
    except IntegrityError:
        # A concurrent delivery of the same notification committed first; ours changes nothing.
        await uow.rollback()
        return Handled(Result.DUPLICATE)
    if receipt.owed_back:
        # Accepted all the same: the money is recorded, and the provider must stop retrying.
        return Handled(Result.REFUND_REQUESTED, receipts.REFUND_REQUESTED, receipt.outcome.message)
    return Handled(Result.PAID if was_pending else Result.ALREADY_PAID)


def _pays_exactly(notification: Notification, order: Order) -> bool:
    if notification.currency != order.currency:
        return False
    try:
        return Money.of(notification.amount, order.currency).minor == order.total_fen
    except MoneyError:  # more decimals than the currency has, or too large: not this total
        return False

