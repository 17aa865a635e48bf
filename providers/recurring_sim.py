"""A simulated recurring-payment provider for demos and tests: the protocol of
providers/recurring.py, in memory.

Agreement ids are signed, as a provider's are unforgeable: `sim_agr_<payload>.<mac>`, the
payload naming the plan, the subscriber, the cap and a nonce, the mac an HMAC-SHA256 of it
under the simulator's key. Every call checks the mac in constant time and the subscriber,
so a forged, altered or borrowed id is refused. Charges are kept by key: the same key
charged again answers as the first time and moves no money. `decline_next(n)` makes the
next n new charges decline (a buyer without balance), for dunning.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from providers.recurring import Agreement, AgreementRefused, AgreementRequest, Charge, ChargeResult, ChargeState

PREFIX = "sim_agr_"


@dataclass
class RecurringSim:
    key: bytes = field(repr=False)
    name: str = "SIM"
    charges: dict[str, ChargeResult] = field(default_factory=dict)  # by our key
    cancelled: set[str] = field(default_factory=set)
    declines: dict[str | None, int] = field(default_factory=dict)  # by subscriber; None: anyone's

    def decline_next(self, count: int, subscriber: str | None = None) -> None:
        """Decline the next `count` new charges (of `subscriber`, or of anyone)."""
        self.declines[subscriber] = count

    def charged(self, subscriber: str | None = None) -> list[ChargeResult]:
        """The charges that moved money (tests and the demo read them)."""
        return [c for k, c in self.charges.items() if c.state is ChargeState.SUCCEEDED
                and (subscriber is None or k.startswith(subscriber))]

    async def sign(self, request: AgreementRequest) -> Agreement:
        payload = "|".join([request.plan, request.subscriber, str(request.cap_fen), request.currency,
                            request.period, secrets.token_hex(8)])
        encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        agreement_id = f"{PREFIX}{encoded}.{self._mac(encoded)}"
        return Agreement(agreement_id, request.plan, request.subscriber, request.cap_fen, active=True)

    async def agreement(self, agreement_id: str, subscriber: str) -> Agreement:
        plan, signed_for, cap = self._verified(agreement_id)
        if not hmac.compare_digest(signed_for.encode(), subscriber.encode()):
            raise AgreementRefused("the agreement was signed for another subscriber")
        return Agreement(agreement_id, plan, signed_for, cap, active=agreement_id not in self.cancelled)

    async def charge(self, charge: Charge) -> ChargeResult:
        agreement = await self.agreement(charge.agreement_id, charge.subscriber)
        earlier = self.charges.get(charge.key)
        if earlier is not None:
            return earlier  # the same charge asked again: answered, not repeated
        now = datetime.now(UTC)
        if not agreement.active:
            result = ChargeResult(ChargeState.DECLINED, charge.key, "", charge.amount_fen, "AGREEMENT_ENDED", now)
        elif charge.amount_fen > agreement.cap_fen:
            result = ChargeResult(ChargeState.DECLINED, charge.key, "", charge.amount_fen, "OVER_AGREED_LIMIT", now)
        elif self._declines_now(charge.subscriber):
            result = ChargeResult(ChargeState.DECLINED, charge.key, "", charge.amount_fen, "NOT_ENOUGH_BALANCE", now)
        else:
            result = ChargeResult(ChargeState.SUCCEEDED, charge.key, f"sim_txn_{secrets.token_hex(12)}",
                                  charge.amount_fen, "", now)
        self.charges[charge.key] = result
        return result

    def _declines_now(self, subscriber: str) -> bool:
        for turn in (subscriber, None):
            if self.declines.get(turn, 0) > 0:
                self.declines[turn] -= 1
                return True
        return False

    async def cancel(self, agreement_id: str, subscriber: str) -> None:
        await self.agreement(agreement_id, subscriber)
        self.cancelled.add(agreement_id)

    def _verified(self, agreement_id: str) -> tuple[str, str, int]:
        encoded, dot, mac = agreement_id.removeprefix(PREFIX).rpartition(".")
        if not agreement_id.startswith(PREFIX) or not dot or not hmac.compare_digest(mac, self._mac(encoded)):
            raise AgreementRefused("not an agreement this provider signed")
        plan, subscriber, cap = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode().split("|")[:3]
        return plan, subscriber, int(cap)

    def _mac(self, encoded: str) -> str:
        return hmac.new(self.key, encoded.encode(), hashlib.sha256).hexdigest()[:32]


def sim_key(secret_key: bytes) -> bytes:
    """The simulator's signing key, derived from the gateway's secret key (never the key itself)."""
    return hmac.new(secret_key, b"quanyi recurring simulator v1", hashlib.sha256).digest()
