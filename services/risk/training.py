"""Training a risk model: gradient-boosted trees from scikit-learn, exported as plain data.

scikit-learn is needed here only (the `risk` extra: `pip install -e .[risk]`); gateways score
with domain/risk_model.py and load no library. Examples come from a labelled file replayed
through the check (bench/fraud_data.py writes one), or from the database: verdicts whose
features were kept (a model rule applied, in shadow or enforced) and whose outcome is known.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.orders import OrderStatus
from domain.risk_features import FEATURES
from domain.risk_model import Model, Tree
from models import Channel, Order, RiskLabel, RiskVerdict

CHANNEL = FEATURES.index("channel")
# A delivered order nobody disputed for this long is taken for honest.
UNDISPUTED_AFTER = timedelta(days=14)


class TrainingError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Examples:
    rows: list[list[float]]  # features, the channel as its code's index in `channels`
    labels: list[int]  # 1: fraud
    channels: tuple[str, ...]


def examples(rows: Sequence[tuple[Sequence[float], str, bool]]) -> Examples:
    """(features, channel code, fraud) into the model's form: channels numbered in a fixed order."""
    channels = tuple(sorted({channel for _, channel, _ in rows}))
    index = {code: i for i, code in enumerate(channels)}
    found = []
    for values, channel, _ in rows:
        row = list(values)
        row[CHANNEL] = float(index[channel])
        found.append(row)
    return Examples(found, [int(fraud) for _, _, fraud in rows], channels)


def train(data: Examples, *, version: str | None = None, trees: int = 120, depth: int = 3, seed: int = 0) -> Model:
    """Fit gradient-boosted trees on log loss and export them; `version` defaults to a digest of the data."""
    try:
        from sklearn.ensemble import GradientBoostingClassifier
    except ImportError:  # pragma: no cover - depends on the install
        raise TrainingError("training needs scikit-learn: pip install -e '.[risk]'") from None
    positives = sum(data.labels)
    if positives == 0 or positives == len(data.labels):
        raise TrainingError("training needs both fraudulent and honest examples")
    fitted = GradientBoostingClassifier(
        n_estimators=trees, max_depth=depth, learning_rate=0.1, subsample=0.8, random_state=seed
    ).fit(data.rows, data.labels)
    prior = positives / len(data.labels)  # what the trees start from: the log-odds of the prior
    exported = tuple(_tree(stage[0].tree_) for stage in fitted.estimators_)
    digest = hashlib.sha256(json.dumps([data.rows, data.labels, data.channels, trees, depth, seed]).encode()).hexdigest()
    return Model(
        version=version or f"gbt-{digest[:12]}", features=FEATURES, channels=data.channels,
        base=math.log(prior / (1 - prior)), rate=float(fitted.learning_rate), trees=exported,
        metrics={"examples": len(data.labels), "fraud": positives, "fraudShare": round(prior, 4),
                 "trees": trees, "depth": depth},
    )


def _tree(tree: Any) -> Tree:
    return Tree(
        left=tuple(int(v) for v in tree.children_left), right=tuple(int(v) for v in tree.children_right),
        feature=tuple(max(int(v), 0) for v in tree.feature),  # leaves carry -2; never read
        threshold=tuple(float(v) for v in tree.threshold), value=tuple(float(v[0][0]) for v in tree.value),
    )


async def recorded_examples(session: AsyncSession, *, now: datetime) -> list[tuple[list[float], str, bool]]:
    """Labelled outcomes from the database: verdicts with kept features, labelled by a review or an
    operator, or delivered long enough ago without a dispute (honest)."""
    query = (
        select(RiskVerdict.facts, Channel.code, RiskLabel.fraud, Order.status, Order.created_at)
        .join(Channel, Channel.id == RiskVerdict.channel_id)
        .outerjoin(RiskLabel, RiskLabel.verdict_id == RiskVerdict.id)
        .outerjoin(Order, Order.id == RiskVerdict.order_id)
    )
    found = []
    for facts, channel, fraud, status, created_at in await session.execute(query):
        values = (facts or {}).get("model", {}).get("features")
        if not values or len(values) != len(FEATURES):
            continue
        if fraud is None:
            if status is not OrderStatus.DELIVERED or created_at is None or now - created_at < UNDISPUTED_AFTER:
                continue
            fraud = False
        found.append(([float(v) for v in values], channel, bool(fraud)))
    return found
