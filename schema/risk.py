"""Risk types: rules and the history of their changes. Verdicts, which link to the
orders they let through, live beside Order in schema/orders.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from domain import risk as domain
from models import risk as rows
from schema.relay import Node, PageInfo, encode_id

RiskDecision = strawberry.enum(domain.Decision, name="RiskDecision", description="PASS, REVIEW (an operator decides) or REJECT.")
RiskRuleKind = strawberry.enum(domain.RuleKind, name="RiskRuleKind", description="What a risk rule looks at.")


@strawberry.type(description="A risk rule: data operators edit, effective on the next order in every process.")
class RiskRule(Node):
    name: str
    kind: RiskRuleKind  # type: ignore[valid-type]
    parameters: JSON
    action: RiskDecision  # type: ignore[valid-type]
    score: int
    channel: str | None = strawberry.field(description="The one channel it applies to; null: every channel.")
    enabled: bool
    archived: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, row: rows.RiskRule, channel: str | None) -> RiskRule:
        parameters: Any = row.parameters
        return cls(
            id=encode_id("RiskRule", row.id), name=row.name, kind=row.kind, parameters=parameters,
            action=row.action, score=row.score, channel=channel, enabled=row.enabled,
            archived=row.archived_at is not None, created_at=row.created_at, updated_at=row.updated_at,
        )


@strawberry.type(description="One change to a risk rule: who, when, and the rule before and after.")
class RiskRuleChange:
    rule_id: strawberry.ID
    rule_name: str
    change: str = strawberry.field(description="CREATED, UPDATED, ENABLED, DISABLED or ARCHIVED.")
    actor: str
    at: datetime
    before: JSON | None
    after: JSON | None

    @classmethod
    def from_model(cls, row: rows.RiskRuleChange, name: str) -> RiskRuleChange:
        before: Any = row.before
        after: Any = row.after
        return cls(rule_id=encode_id("RiskRule", row.rule_id), rule_name=name, change=row.change, actor=row.actor,
                   at=row.at, before=before, after=after)


@strawberry.type
class RiskRuleChangeEdge:
    cursor: str
    node: RiskRuleChange


@strawberry.type
class RiskRuleChangeConnection:
    edges: list[RiskRuleChangeEdge]
    page_info: PageInfo
