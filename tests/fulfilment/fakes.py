"""An in-memory supplier for fulfilment tests: scripted answers, every call recorded."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from domain.money import Money
from suppliers.base import Outcome, Result, SignatureError, TopUp

GOOD_SIGNATURE = "fake-good"


@dataclass
class FakeSupplier:
    """`answers` are the outcomes of successive submits (then `default`); a submit recorded as
    PENDING or SUCCEEDED is what `query` reports; UNKNOWN submits that never "arrived" (listed
    in `lost`) make `query` say NOT_FOUND. `before_answering`, when set, runs inside a submit
    after the supplier took the request and before it answers (a callback sent that early)."""

    code: str
    answers: list[Outcome] = field(default_factory=list)
    default: Outcome = Outcome.SUCCEEDED
    query_answers: list[Outcome] = field(default_factory=list)
    submissions: list[TopUp] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    known: dict[str, Outcome] = field(default_factory=dict)
    before_answering: Callable[[TopUp], Awaitable[None]] | None = None

    async def submit(self, topup: TopUp) -> Result:
        self.submissions.append(topup)
        outcome = self.answers.pop(0) if self.answers else self.default
        if outcome is not Outcome.UNKNOWN:
            self.known[topup.request_id] = outcome
        if self.before_answering is not None:
            await self.before_answering(topup)
        return Result(outcome, topup.request_id, supplier_reference=f"{self.code}-{len(self.submissions)}")

    async def query(self, request_id: str) -> Result:
        self.queries.append(request_id)
        if self.query_answers:
            return Result(self.query_answers.pop(0), request_id, supplier_reference=f"{self.code}-q")
        return Result(self.known.get(request_id, Outcome.NOT_FOUND), request_id)

    def verify_signature(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        if headers.get("x-fake-signature") != GOOD_SIGNATURE:
            raise SignatureError("bad signature")

    def parse_callback(self, body: bytes) -> Result:
        try:
            data = orjson.loads(body)
            return Result(Outcome(data["status"]), data["request_id"], supplier_reference=data.get("reference"))
        except (ValueError, KeyError, TypeError):
            raise SignatureError("malformed callback") from None

    async def balance(self) -> Money:
        return Money.of("1000.00")

    async def close(self) -> None:
        pass

    def reset(self, *answers: Outcome, default: Outcome = Outcome.SUCCEEDED) -> None:
        self.answers, self.default = list(answers), default
        self.query_answers, self.submissions, self.queries, self.known = [], [], [], {}
        self.before_answering = None
