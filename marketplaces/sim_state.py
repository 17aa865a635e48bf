"""The simulated marketplace's memory: its faults, its shop's trades, refunds and deliveries.

Kept in memory and bounded (`max_trades`: past it the oldest trades are forgotten), which a
simulator can afford. Times come from the clock the simulator is given, so tests can place
trades in the past.
"""

from __future__ import annotations

import random
import secrets
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from domain.money import Money
from marketplaces.base import CLOSED, PAID, DeliveredCode, MarketRefund, Trade, TradeLine, TopUpResult

DELIVERED = "WAIT_BUYER_CONFIRM_GOODS"  # the seller shipped (for virtual goods: delivered)
FAILURES = ("error", "timeout")


@dataclass
class Faults:
    """What goes wrong, settable at start-up and through POST /control."""

    latency_ms: int = 0  # before every answer of the API
    duplicate_rate: float = 0.0  # share of the trades in a pull page that appear in it twice
    pull_fail_rate: float = 0.0  # share of pulls (trades, refunds) that fail
    ship_fail_rate: float = 0.0  # share of deliveries that fail (the delivery is not recorded)
    fail_pulls: int = 0  # the next this many pulls fail, whatever the rates say
    fail_ships: int = 0  # the next this many deliveries fail
    fail_decisions: int = 0  # the next this many refund decisions (agree, refuse) fail
    failure: str = "error"  # how a call fails: "error" (HTTP 500) or "timeout" (no answer for hang_ms)
    hang_ms: int = 15_000
    push_url: str = ""  # where new trades and refunds are pushed, signed; empty: pulled only

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; an unknown name or a wrong type is a ValueError."""
        known = {f.name for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"no fault named {name!r}")
            current = getattr(self, name)
            if isinstance(current, float):
                number = isinstance(value, int | float) and not isinstance(value, bool)
                if not number or not 0 <= value <= 1:
                    raise ValueError(f"{name} is a number from 0 to 1")
                value = float(value)
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError(f"{name} is a whole number, 0 or more")
            elif name == "failure" and value not in FAILURES:
                raise ValueError("failure is error or timeout")
            elif not isinstance(value, str):
                raise ValueError(f"{name} is text")
            setattr(self, name, value)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Delivery:
    """The one delivery the marketplace keeps for a trade, and how often it was reported."""

    tid: str
    at: datetime
    codes: list[DeliveredCode] = field(default_factory=list)
    topups: list[TopUpResult] = field(default_factory=list)
    requests: int = 1

    def as_json(self) -> dict[str, Any]:
        # Codes masked: the control API is for tests and demos, and still no place for a secret.
        return {
            "tid": self.tid, "requests": self.requests, "codes": [_mask(code.secret) for code in self.codes],
            "topups": [{"account": _mask(t.account), "reference": t.reference} for t in self.topups],
        }


@dataclass
class Decision:
    """The seller's one decision on a refund, and how often it was sent."""

    refund_id: str
    agree: bool
    message: str
    amount: str
    requests: int = 1

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _mask(text: str) -> str:
    keep = min(4, len(text) // 2)
    return "*" * (len(text) - keep) + text[len(text) - keep:]


class Shop:
    """One seller's trades on the marketplace."""

    def __init__(self, clock: Callable[[], datetime], *, seed: int | None = None, max_trades: int = 10_000) -> None:
        self.clock = lambda: clock().replace(microsecond=0)  # the platforms keep whole seconds
        self.random = random.Random(seed)
        self.trades: OrderedDict[str, Trade] = OrderedDict()
        self.refunds: OrderedDict[str, MarketRefund] = OrderedDict()
        self.deliveries: dict[str, Delivery] = {}
        self.decisions: dict[str, Decision] = {}
        self._max = max_trades
        # Trade numbers start at a random place: a marketplace never numbers two trades alike, so
        # neither does a simulator started again against the same database.
        self._next = secrets.randbelow(10**9) * 1000 + 1

    def _number(self) -> str:
        number = f"{3_900_000_000_000 + self._next}"
        self._next += 1
        return number

    def sell(self, lines: list[tuple[str, int, Money]], *, account: str | None, phone: str | None) -> Trade:
        """A buyer pays for a trade: lines of (outer id, quantity, unit price)."""
        now = self.clock()
        tid = self._number()
        trade_lines = tuple(
            TradeLine(line_id=f"{tid}{i:02d}", item_id=f"6{zlib.crc32(outer.encode()):011d}", sku_id=None,
                      outer_id=outer, quantity=quantity, price=price)
            for i, (outer, quantity, price) in enumerate(lines, start=1)
        )
        payment = sum((line.price * line.quantity for line in trade_lines), Money(0, "CNY"))
        trade = Trade(tid, PAID, now, payment, trade_lines, paid_at=now, buyer_phone=phone, recharge_account=account)
        self.trades[tid] = trade
        while len(self.trades) > self._max:
            self.trades.popitem(last=False)
        return trade

    def changed(self, start: datetime, end: datetime, status: str | None) -> list[Trade]:
        found = [t for t in self.trades.values() if start <= t.modified < end and (status is None or t.status == status)]
        return sorted(found, key=lambda t: (t.modified, t.tid))

    def refunds_changed(self, start: datetime, end: datetime) -> list[MarketRefund]:
        return sorted((r for r in self.refunds.values() if start <= r.modified < end), key=lambda r: (r.modified, r.refund_id))

    def ship(self, tid: str, codes: list[DeliveredCode], topups: list[TopUpResult]) -> str | None:
        """Record the trade's delivery; None, or why it is refused (ALREADY when it was delivered)."""
        trade = self.trades.get(tid)
        if trade is None:
            return "NOT_FOUND"
        known = self.deliveries.get(tid)
        if known is not None:
            known.requests += 1
            return "ALREADY"
        if trade.status != PAID:
            return "CLOSED"
        self.deliveries[tid] = Delivery(tid, self.clock(), codes, topups)
        self.trades[tid] = _moved(trade, DELIVERED, self.clock())
        return None

    def refund(self, tid: str, reason: str) -> MarketRefund | None:
        """The buyer asks for their money back. Before delivery the platform refunds at once
        and closes the trade; after it, the refund waits for the seller."""
        trade = self.trades.get(tid)
        if trade is None:
            return None
        now = self.clock()
        status = "WAIT_SELLER_AGREE"
        if trade.status == PAID:
            status = "SUCCESS"
            self.trades[tid] = _moved(trade, CLOSED, now)
        refund = MarketRefund(f"R{tid}", tid, status, trade.payment, now, reason)
        self.refunds[refund.refund_id] = refund
        return refund


    def withdraw(self, tid: str) -> MarketRefund | None:
        """The buyer withdraws the refund waiting for the seller: CLOSED."""
        found = [r for r in self.refunds.values() if r.tid == tid and r.status == "WAIT_SELLER_AGREE"]
        if not found:
            return None
        closed = MarketRefund(found[-1].refund_id, tid, "CLOSED", found[-1].amount, self.clock(), found[-1].reason)
        self.refunds[closed.refund_id] = closed
        return closed

    def decide(self, refund_id: str, tid: str, agree: bool, message: str, amount: str) -> str | None:
        """The seller agrees to or refuses a refund waiting for them; None, or why it is refused
        (ALREADY when this decision was recorded before, STATUS for the other decision or a
        refund not waiting, NOT_FOUND)."""
        refund = self.refunds.get(refund_id)
        if refund is None or refund.tid != tid:
            return "NOT_FOUND"
        known = self.decisions.get(refund_id)
        if known is not None:
            known.requests += 1
            return "ALREADY" if known.agree == agree else "STATUS"
        if refund.status != "WAIT_SELLER_AGREE":
            return "STATUS"
        self.decisions[refund_id] = Decision(refund_id, agree, message, amount)
        status = "SUCCESS" if agree else "SELLER_REFUSE_BUYER"
        self.refunds[refund_id] = MarketRefund(refund_id, tid, status, refund.amount, self.clock(), refund.reason)
        if agree:
            self.trades[tid] = _moved(self.trades[tid], CLOSED, self.clock())
        return None


def _moved(trade: Trade, status: str, at: datetime) -> Trade:
    return Trade(trade.tid, status, at, trade.payment, trade.lines, trade.paid_at, trade.buyer_phone,
                 trade.recharge_account)
