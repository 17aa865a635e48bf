"""Recorded order attempts replayed through the risk check, in time order, on a counter store of their own.

What the check would have said of each attempt, and the features the model reads, computed by
the same code the gateway runs (RiskCheck.judge): for training a model on a labelled set and
for measuring rules and model against each other (bench/risk_model.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.money import Money
from domain.risk import Facts, Rule, Verdict
from domain.risk_model import Model
from services.risk.check import RiskCheck
from services.risk.counters import MemoryCounters


@dataclass(frozen=True, slots=True)
class Replayed:
    verdict: Verdict  # what the rules decided (model rules included)
    facts: Facts  # with the model's opinion: its features, and its score when a model was given
    fraud: bool | None


def facts_of(record: Mapping[str, Any]) -> Facts:
    """An attempt as bench/fraud_data.py writes it."""
    return Facts(
        channel=record["channel"], at=datetime.fromisoformat(record["at"]),
        amount=Money.of(record["amount"], record.get("currency", "CNY")),
        quantities={int(sku): int(units) for sku, units in record["quantities"].items()},
        client_ip=record.get("clientIp"), device_id=record.get("deviceId"), phone=record.get("phone"),
        email=record.get("email"), account=record.get("account"), coupon=record.get("coupon"),
    )


async def replay(attempts: Iterable[Mapping[str, Any]], rules: list[Rule], model: Model | None = None) -> list[Replayed]:
    """Each attempt judged as the gateway would have, with every attempt before it counted."""
    check = RiskCheck(None, MemoryCounters())  # type: ignore[arg-type]  # rules are handed to judge

    async def unknown() -> None:
        return None  # the replay's store saw every earlier attempt: an account it does not know is new

    found = []
    for record in attempts:
        verdict, facts = await check.judge(
            rules, facts_of(record), attempt=None, scoring=True, model=model, first_order=unknown
        )
        found.append(Replayed(verdict, facts, record.get("fraud")))
    return found
