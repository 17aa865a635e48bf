"""The operator's risk model commands: train a model and store it, activate one, and report what
enforcing the shadow model rules would change (`quanyi risk …`)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.risk import Decision
from domain.risk_model import Model
from models import RiskLabel, RiskVerdict
from services.risk.replay import replay
from services.risk.training import TrainingError, examples, recorded_examples, train

MAX_DATASET_LINES = 2_000_000


def dataset(path: Path) -> Iterator[dict[str, Any]]:
    """The labelled attempts of a JSON Lines file (bench/fraud_data.py writes one)."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if number > MAX_DATASET_LINES:
                raise TrainingError(f"{path}: more than {MAX_DATASET_LINES:,} attempts")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record.get("fraud"), bool):
                    raise ValueError("no fraud label (true or false)")
            except (ValueError, AttributeError) as error:
                raise TrainingError(f"{path}:{number}: {error}") from None
            yield record


async def train_from_file(path: Path, *, version: str | None, trees: int) -> Model:
    records = sorted(dataset(path), key=lambda record: record["at"])
    judged = await replay(records, [])
    return train(examples([(r.facts.model.features, r.facts.channel, bool(r.fraud)) for r in judged]),
                 version=version, trees=trees)


async def train_from_database(session: AsyncSession, *, version: str | None, trees: int, now: datetime) -> Model:
    found = await recorded_examples(session, now=now)
    if not found:
        raise TrainingError(
            "no labelled outcomes with features yet: enable a MODEL rule in shadow (features are kept from then on), "
            "and label verdicts by reviews or labelRiskVerdict"
        )
    return train(examples(found), version=version, trees=trees)


@dataclass(frozen=True, slots=True)
class ShadowReport:
    scored: int
    versions: Counter[str]
    would_flag: Counter[str]  # shadow rule -> attempts its threshold reached
    newly_held: Counter[str]  # ... of which the rules let through
    labelled: Counter[tuple[str, bool]]  # (shadow rule, fraud) among those with a known outcome

    def lines(self) -> list[str]:
        if not self.scored:
            return ["no attempts scored by a model in this period"]
        found = [f"{self.scored} attempts scored; model versions: "
                 + ", ".join(f"{v} ({n})" for v, n in self.versions.most_common())]
        for rule, count in self.would_flag.most_common():
            fraud, honest = self.labelled[(rule, True)], self.labelled[(rule, False)]
            found.append(
                f"{rule}: enforcing would hold {count} attempts ({count / self.scored:.1%}), "
                f"{self.newly_held[rule]} of them passed by the rules today; known outcomes: {fraud} fraud, {honest} honest"
            )
        return found


async def shadow_report(session: AsyncSession, *, since: timedelta, now: datetime) -> ShadowReport:
    rows = await session.execute(
        select(RiskVerdict.facts, RiskVerdict.decision, RiskLabel.fraud)
        .outerjoin(RiskLabel, RiskLabel.verdict_id == RiskVerdict.id)
        .where(RiskVerdict.created_at >= now - since)
    )
    scored, versions, flag, held, labelled = 0, Counter[str](), Counter[str](), Counter[str](), Counter[tuple[str, bool]]()
    for facts, decision, fraud in rows:
        model = (facts or {}).get("model")
        if not model or model.get("score") is None:
            continue
        scored += 1
        versions[model.get("version") or "?"] += 1
        for rule in model.get("shadowMatched") or []:
            flag[rule] += 1
            if decision is Decision.PASS:
                held[rule] += 1
            if fraud is not None:
                labelled[(rule, bool(fraud))] += 1
    return ShadowReport(scored, versions, flag, held, labelled)
