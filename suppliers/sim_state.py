"""The simulated supplier's memory: its faults, its balance and every submission it took.

Kept in memory and bounded: past `max_submissions` the oldest settled submissions are
forgotten (and with them their idempotency), which a simulator can afford.
"""

from __future__ import annotations

import enum
import random
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from domain.money import Money
from suppliers.base import Outcome, Result, TopUp
from suppliers.wire import mask_account


class ServerError(enum.Enum):
    OFF = "off"
    BEFORE = "before"  # answer 500 without recording the request: query says NOT_FOUND
    AFTER = "after"  # record (and credit) it, then answer 500: query says the truth


@dataclass
class Faults:
    """What goes wrong, settable at start-up and through POST /control."""

    mode: str = "async"  # "sync": the answer carries the outcome; "async": PENDING, then a callback
    latency_ms: int = 0  # before the answer, plus or minus up to jitter_ms
    jitter_ms: int = 0
    callback_delay_ms: int = 50  # async mode: from the answer to the callback
    fail_rate: float = 0.0  # share of top-ups that end FAILED
    fail_all: bool = False
    fail_products: list[str] = field(default_factory=list)  # refused at once (HTTP 422)
    fail_accounts: list[str] = field(default_factory=list)
    answer_after_ms: int = 0  # credit, then answer this late: longer than a client waits
    server_error: ServerError = ServerError.OFF
    answer_twice: bool = False  # every callback is sent twice
    bad_signature: bool = False  # callbacks are signed with the wrong key

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; an unknown name or a wrong type is a ValueError."""
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"no fault named {name!r}")
            current = getattr(self, name)
            if isinstance(current, ServerError):
                if value not in [e.value for e in ServerError]:
                    raise ValueError(f"{name} is off, before or after")
                value = ServerError(value)
            elif isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} is true or false")
            elif isinstance(current, float):
                number = isinstance(value, int | float) and not isinstance(value, bool)
                if not number or not 0 <= value <= 1:
                    raise ValueError(f"{name} is a number from 0 to 1")
                value = float(value)
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"{name} is a whole number of milliseconds, 0 or more")
            elif isinstance(current, list):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{name} is a list of strings")
            elif name == "mode" and value not in ("sync", "async"):
                raise ValueError("mode is sync or async")
            setattr(self, name, value)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["server_error"] = self.server_error.value
        return data


@dataclass
class Submission:
    topup: TopUp
    reference: str
    outcome: Outcome  # the outcome decided when the request arrived
    settled: bool  # the outcome is reported: in async mode only once the callback is due
    refused: bool = False  # refused at once (answered 422), never pending
    message: str = ""
    received: int = 1
    callbacks_sent: int = 0

    def result(self) -> Result:
        shown = self.outcome if self.settled else Outcome.PENDING
        message = self.message if self.settled else ""
        return Result(shown, self.topup.request_id, self.reference, message)

    def as_json(self) -> dict[str, Any]:
        return {
            "request_id": self.topup.request_id,
            "product": self.topup.product,
            "account": mask_account(self.topup.account),
            "received": self.received,
            "status": self.result().outcome.value,
            "callbacks_sent": self.callbacks_sent,
        }


class Ledger:
    """The supplier's books: one Submission per request_id; an account is credited once."""

    def __init__(
        self, balance: Money, *, seed: int | None = None, max_submissions: int = 10_000
    ) -> None:
        self.balance = balance
        self.random = random.Random(seed)
        self._max = max_submissions
        self._submissions: OrderedDict[str, Submission] = OrderedDict()
        self._next_reference = 1

    def find(self, request_id: str) -> Submission | None:
        return self._submissions.get(request_id)

    def all(self) -> list[Submission]:
        return list(self._submissions.values())

    def receive(self, topup: TopUp, faults: Faults) -> tuple[Submission, bool]:
        """The submission for this request, and whether it is new.

        A request_id seen before gets its first submission back, whatever the new body says.
        """
        known = self._submissions.get(topup.request_id)
        if known is not None:
            known.received += 1
            return known, False
        submission = self._decide(topup, faults)
        self._submissions[topup.request_id] = submission
        self._forget_oldest()
        return submission, True

    def _decide(self, topup: TopUp, faults: Faults) -> Submission:
        reference = f"SIM{self._next_reference:08d}"
        self._next_reference += 1
        cost = topup.face_value * topup.quantity
        refusal = ""
        if topup.product in faults.fail_products:
            refusal = f"product {topup.product} is not available"
        elif topup.account in faults.fail_accounts:
            refusal = "the account cannot be credited"
        elif topup.face_value.minor <= 0:
            refusal = "the face value must be positive"
        elif cost.currency != self.balance.currency or cost.minor > self.balance.minor:
            refusal = "insufficient balance"
        if refusal:
            return Submission(
                topup, reference, Outcome.FAILED, settled=True, refused=True, message=refusal
            )
        # Always draw, so one seed gives the same sequence whatever fail_all says.
        unlucky = self.random.random() < faults.fail_rate
        if faults.fail_all or unlucky:
            return Submission(topup, reference, Outcome.FAILED, settled=faults.mode == "sync",
                              message="the supplier could not credit the account")
        self.balance = self.balance - cost  # the credit: once per request_id
        return Submission(topup, reference, Outcome.SUCCEEDED, settled=faults.mode == "sync")

    def _forget_oldest(self) -> None:
        excess = len(self._submissions) - self._max
        if excess <= 0:
            return
        # A pending submission still owes its callback: only settled ones are forgotten.
        settled = [key for key, s in self._submissions.items() if s.settled][:excess]
        for request_id in settled:
            del self._submissions[request_id]

    def jitter(self, faults: Faults) -> float:
        """Seconds to wait before answering."""
        spread = self.random.randint(-faults.jitter_ms, faults.jitter_ms) if faults.jitter_ms else 0
        return max(0, faults.latency_ms + spread) / 1000
