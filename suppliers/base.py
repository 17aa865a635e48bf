"""What the gateway needs from a supplier that fulfils direct top-ups.

Each supplier speaks its own wire format; an adapter turns it into these few calls. The
gateway never branches on which supplier it talks to: it chooses an adapter once per
supplier and calls the protocol.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from domain.money import Money


class Outcome(enum.Enum):
    SUCCEEDED = "SUCCEEDED"  # the account was credited
    FAILED = "FAILED"  # definitively not credited: another supplier may be tried
    PENDING = "PENDING"  # accepted, result to come by callback or query
    UNKNOWN = "UNKNOWN"  # no answer we can trust (timeout, 5xx): query before deciding
    NOT_FOUND = "NOT_FOUND"  # query only: the supplier never received this request


@dataclass(frozen=True, slots=True)
class TopUp:
    """One top-up to submit.

    `request_id` is the supplier's idempotency key: our order number, suffixed with the
    order line (and bundle component) when an order holds more than one top-up. Sending
    the same request_id twice must never credit the account twice.
    """

    request_id: str
    product: str  # the supplier's product code (our SKU code unless mapped)
    account: str  # the buyer's account to credit
    quantity: int
    face_value: Money
    callback_url: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    request_id: str
    supplier_reference: str | None = None
    message: str = ""  # the supplier's reason, for operators; never shown to buyers as-is


class SignatureError(Exception):
    """A callback whose signature, timestamp or shape cannot be trusted."""


class SupplierAdapter(Protocol):
    code: str

    async def submit(self, topup: TopUp) -> Result: ...

    async def query(self, request_id: str) -> Result: ...

    def verify_signature(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        """Raise SignatureError unless the callback was signed by this supplier recently."""
        ...

    def parse_callback(self, body: bytes) -> Result:
        """The outcome a verified callback reports; SignatureError if it is malformed."""
        ...

    async def balance(self) -> Money: ...

    async def close(self) -> None: ...


class SupplierUnavailable(Exception):
    """The supplier gave no usable answer to a call that has no Outcome (its balance)."""
