"""What the gateway gives memberships, chosen once in gateway.py: the recurring payment
provider (None: memberships cannot be sold) and the clock their calendar runs on."""

from __future__ import annotations

from dataclasses import dataclass

from providers.recurring import RecurringPayments
from services.core.clock import Clock, system_clock


@dataclass(frozen=True, slots=True)
class Memberships:
    provider: RecurringPayments | None = None
    clock: Clock = system_clock
