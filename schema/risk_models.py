"""The learned risk model as operators see it: stored versions, and its opinion of one attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from services.risk.models import StoredModel


@strawberry.type(description="A trained risk model; at most one is active, and every gateway scores with it.")
class RiskModel:
    version: str
    active: bool
    metrics: JSON
    created_at: datetime
    activated_at: datetime | None

    @classmethod
    def from_stored(cls, stored: StoredModel) -> RiskModel:
        metrics: Any = stored.metrics
        return cls(version=stored.version, active=stored.active, metrics=metrics, created_at=stored.created_at,
                   activated_at=stored.activated_at)


@strawberry.type(description="The model's opinion of an attempt, kept with its verdict.")
class RiskModelScore:
    version: str | None = strawberry.field(description="null: no model was active; only the features were kept.")
    score: float | None = strawberry.field(description="The probability of fraud, 0 to 1.")
    explanation: str | None = strawberry.field(description="The features that moved the score most, with their effect.")
    shadow_matched: list[str] = strawberry.field(description="Shadow model rules the score reached: held, had they been enforced.")

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RiskModelScore:
        return cls(version=record.get("version"), score=record.get("score"), explanation=record.get("explanation"),
                   shadow_matched=list(record.get("shadowMatched") or []))
