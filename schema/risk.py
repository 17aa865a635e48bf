"""Risk types: verdicts and their reasons, rules and the history of their changes."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from domain import risk as domain
from domain.access import may_read_risk
from models import risk as rows
from schema.context import Info
from schema.relay import Node, PageInfo, encode_id

if TYPE_CHECKING:
    from schema.orders import Order

RiskDecision = strawberry.enum(domain.Decision, name="RiskDecision", description="PASS, REVIEW (an operator decides) or REJECT.")
RiskRuleKind = strawberry.enum(domain.RuleKind, name="RiskRuleKind", description="What a risk rule looks at.")


@strawberry.type(description="Why a rule matched: what was observed against its threshold.")
class RiskReason:
    rule: str
    observed: str | None
    threshold: str | None
    action: RiskDecision  # type: ignore[valid-type]
    score: int


@strawberry.type(description="The risk check's verdict on one order attempt.")
class RiskVerdict(Node):
    decision: RiskDecision  # type: ignore[valid-type]
    score: int = strawberry.field(description="The matching rules' scores added up, at most 100.")
    reasons: list[RiskReason]
    channel: str
    idempotency_key: str
    created_at: datetime
    _row: strawberry.Private[rows.RiskVerdict]

    @classmethod
    def from_model(cls, row: rows.RiskVerdict, channel: str) -> RiskVerdict:
        return cls(
            id=encode_id("RiskVerdict", row.id),
            decision=row.decision,
            score=row.score,
            reasons=[
                RiskReason(rule=r["rule"], observed=r.get("observed"), threshold=r.get("threshold"),
                           action=domain.Decision(r["action"]), score=int(r["score"]))
                for r in row.reasons
            ],
            channel=channel,
            idempotency_key=row.idempotency_key,
            created_at=row.created_at,
            _row=row,
        )

    @strawberry.field(description="The facts the verdict was reached on (address, device, contact, amount); operators only.")
    def facts(self, info: Info) -> JSON | None:
        facts: Any = self._row.facts
        return facts if info.context.principal.is_admin else None

    @strawberry.field(description="The order it let through or held; null for a rejected attempt.")
    async def order(self, info: Info) -> Annotated[Order, strawberry.lazy("schema.orders")] | None:
        from schema.channel import ChannelScope
        from schema.orders import Order

        if self._row.order_id is None:
            return None
        row = await info.context.loaders.order_by_id.load(self._row.order_id)
        channel = await info.context.loaders.channel_by_id.load(row.channel_id) if row else None
        if row is None or channel is None or not may_read_risk(info.context.principal, channel.code):
            return None
        return Order.from_model(row, ChannelScope.of(channel))


@strawberry.type
class RiskVerdictEdge:
    cursor: str
    node: RiskVerdict


@strawberry.type
class RiskVerdictConnection:
    edges: list[RiskVerdictEdge]
    page_info: PageInfo


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
