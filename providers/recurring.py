"""What the gateway needs from a provider of recurring payments (WeChat Pay 委托代扣 /
papay, Alipay 周期扣款 / 商家扣款).

The buyer signs an agreement (签约) once; the provider answers with an agreement id
(WeChat's contract_id, Alipay's agreement_no) that only it can issue and that names the
merchant's plan and our subscriber. Each renewal is then charged against it without the
buyer, idempotently by our key (out_trade_no): the same key charged twice is one charge,
answered the same way. Every call names the agreement, and the provider refuses an id it
did not issue, or issued for another subscriber, or that was cancelled (解约).
Money crosses in fen, as in providers/base.py.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from providers.base import ProviderError


@dataclass(frozen=True, slots=True)
class AgreementRequest:
    plan: str  # the merchant's plan (our SKU code): the provider shows it on the signing page
    subscriber: str  # our id of the subscription (its number): the agreement is bound to it
    cap_fen: int  # the most one charge may take (the buyer agreed to it when signing)
    currency: str
    period: str  # MONTH, QUARTER, YEAR


@dataclass(frozen=True, slots=True)
class Agreement:
    agreement_id: str
    plan: str
    subscriber: str
    cap_fen: int
    active: bool


class ChargeState(enum.Enum):
    SUCCEEDED = "SUCCEEDED"  # the money moved
    DECLINED = "DECLINED"  # not charged (balance, limit, agreement ended): nothing moved


@dataclass(frozen=True, slots=True)
class Charge:
    agreement_id: str
    subscriber: str
    key: str  # our id of this charge (out_trade_no): once only
    amount_fen: int
    currency: str
    description: str


@dataclass(frozen=True, slots=True)
class ChargeResult:
    state: ChargeState
    key: str
    transaction_id: str  # the provider's id of the payment ("" when declined)
    amount_fen: int
    reason: str = ""  # why it was declined, in the provider's words (no buyer data)
    at: datetime | None = None


class AgreementRefused(ProviderError):
    """An agreement id the provider did not issue, issued for another subscriber, or ended."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="AGREEMENT_INVALID", retryable=False)


class RecurringPayments(Protocol):
    name: str

    async def sign(self, request: AgreementRequest) -> Agreement:
        """Sign an agreement for the buyer (a real provider does it on its signing page and
        notifies the id; the simulator signs at once)."""
        ...

    async def agreement(self, agreement_id: str, subscriber: str) -> Agreement:
        """The agreement as the provider knows it; AgreementRefused if it is not one of its
        own for `subscriber`."""
        ...

    async def charge(self, charge: Charge) -> ChargeResult:
        """Charge once per key; AgreementRefused for an agreement it refuses, ProviderError
        when it gives no answer we can trust (the caller tries again with the same key)."""
        ...

    async def cancel(self, agreement_id: str, subscriber: str) -> None:
        """End the agreement (解约): the provider refuses every charge on it afterwards."""
        ...
