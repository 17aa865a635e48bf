"""A trained risk model as plain data, and its score of one attempt with the reasons for it.

Training happens elsewhere (services/risk/training.py, with scikit-learn); what a gateway
loads is this: gradient-boosted regression trees in flat arrays, evaluated here in a few
dozen microseconds with no library. Each tree also keeps the value of every inner node, so
the walk can say how much each feature moved the score on the way down (the path
attribution of Saabas): the top contributions are the model's reasons, in words an
operator can check against the attempt.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.risk_features import FEATURES


class ModelError(ValueError):
    """A model file or record that cannot be used."""


@dataclass(frozen=True, slots=True)
class Tree:
    left: tuple[int, ...]  # -1 at a leaf
    right: tuple[int, ...]
    feature: tuple[int, ...]
    threshold: tuple[float, ...]  # go left when the value is <= threshold
    value: tuple[float, ...]  # every node's value, inner nodes included


@dataclass(frozen=True, slots=True)
class Model:
    version: str
    features: tuple[str, ...]
    channels: tuple[str, ...]
    base: float  # log-odds before the first tree
    rate: float  # learning rate: each tree's step
    trees: tuple[Tree, ...]
    metrics: Mapping[str, Any]

    def as_record(self) -> dict[str, Any]:
        return {
            "version": self.version, "features": list(self.features), "channels": list(self.channels),
            "base": self.base, "rate": self.rate, "metrics": dict(self.metrics),
            "trees": [
                {"left": t.left, "right": t.right, "feature": t.feature, "threshold": t.threshold, "value": t.value}
                for t in self.trees
            ],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Model:
        try:
            model = cls(
                version=str(record["version"]), features=tuple(record["features"]),
                channels=tuple(str(c) for c in record["channels"]), base=float(record["base"]),
                rate=float(record["rate"]), metrics=dict(record.get("metrics") or {}),
                trees=tuple(
                    Tree(tuple(map(int, t["left"])), tuple(map(int, t["right"])), tuple(map(int, t["feature"])),
                         tuple(map(float, t["threshold"])), tuple(map(float, t["value"])))
                    for t in record["trees"]
                ),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"not a risk model: {error}") from None
        model.check()
        return model

    def check(self) -> None:
        if self.features != FEATURES:
            raise ModelError("the model was trained on other features than this gateway computes")
        for tree in self.trees:
            size = len(tree.value)
            if not size or any(len(part) != size for part in (tree.left, tree.right, tree.feature, tree.threshold)):
                raise ModelError("a tree's arrays differ in length")
            for node in range(size):
                if tree.left[node] == -1:
                    continue
                if not (node < tree.left[node] < size and node < tree.right[node] < size):
                    raise ModelError("a tree points outside itself or backwards")
                if not 0 <= tree.feature[node] < len(FEATURES):
                    raise ModelError("a tree splits on a feature that does not exist")


@dataclass(frozen=True, slots=True)
class Score:
    probability: float  # of fraud, 0..1
    contributions: tuple[tuple[str, float], ...]  # (feature, log-odds added), largest effect first

    def top(self, count: int = 3) -> tuple[tuple[str, float], ...]:
        return self.contributions[:count]


def score(model: Model, values: Sequence[float]) -> Score:
    total = model.base
    effect = [0.0] * len(values)
    for tree in model.trees:
        node = 0
        left, right, feature, threshold, value = tree.left, tree.right, tree.feature, tree.threshold, tree.value
        while left[node] != -1:
            split = feature[node]
            child = left[node] if values[split] <= threshold[node] else right[node]
            effect[split] += (value[child] - value[node]) * model.rate
            node = child
        total += value[0] * model.rate
    for contribution in effect:
        total += contribution
    ranked = sorted(
        ((model.features[i], e) for i, e in enumerate(effect) if e), key=lambda item: abs(item[1]), reverse=True
    )
    return Score(_sigmoid(total), tuple(ranked))


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def explain(result: Score, values: Sequence[float], count: int = 3) -> str:
    """The top contributions in words: `device_new_accounts_1d=7 (+1.92)`."""
    index = {name: i for i, name in enumerate(FEATURES)}
    return ", ".join(f"{name}={_shown(values[index[name]])} ({effect:+.2f})" for name, effect in result.top(count))


def _shown(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.2f}"
