"""Risk: rules (operators edit them), their change history, verdicts, and order review."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import strawberry
from strawberry.scalars import JSON

from domain.access import Role, may_read_risk
from domain.risk import Decision, RuleKind
from resolvers.order_access import NOT_FOUND, locked_order
from schema.channel import ChannelScope
from schema.context import Info
from schema.errors import BadUserInput, Forbidden, UserError
from schema.orders import Order, RiskVerdict, RiskVerdictConnection, RiskVerdictEdge
from schema.permissions import ADMIN_ONLY, HasKey
from schema.relay import decode_cursor, decode_pk, encode_cursor, page_info, page_size
from schema.risk import (
    RiskDecision,
    RiskRule,
    RiskRuleChange,
    RiskRuleChangeConnection,
    RiskRuleChangeEdge,
    RiskRuleKind,
)
from services.orders import review
from services.risk import reads as risk_reads
from services.risk import rules as risk_rules


@strawberry.input(description="A new risk rule. Parameters by kind: see the README's risk section.")
class CreateRiskRuleInput:
    name: str
    kind: RiskRuleKind  # type: ignore[valid-type]
    parameters: JSON
    action: RiskDecision  # type: ignore[valid-type]
    score: int | None = strawberry.field(default=None, description="0 to 100; default 50 for REVIEW, 100 for REJECT.")
    channel: str | None = strawberry.field(default=None, description="Only this channel; null: every channel.")
    enabled: bool = True


@strawberry.input(description="Fields to change; those left out stay as they are.")
class UpdateRiskRuleInput:
    name: str | None = None
    parameters: JSON | None = None
    action: RiskDecision | None = None  # type: ignore[valid-type]
    score: int | None = None
    channel: str | None = None
    all_channels: bool = strawberry.field(default=False, description="Apply to every channel (clears `channel`).")


@strawberry.type
class RiskRulePayload:
    rule: RiskRule | None
    user_errors: list[UserError]


@strawberry.type
class ReviewOrderPayload:
    order: Order | None
    user_errors: list[UserError]


async def _rule_command(info: Info, command: Any, *args: Any, **kwargs: Any) -> RiskRulePayload:
    """Run one rule change in a transaction; once it commits, every process drops its rules."""
    try:
        async with info.context.uow() as uow:
            rule = await command(uow.session, *args, actor=info.context.principal.actor, at=info.context.now, **kwargs)
            rule_id = rule.id
    except risk_rules.RuleError as error:
        return RiskRulePayload(rule=None, user_errors=[UserError(field=error.field, message=error.message, code=error.code)])
    if info.context.risk is not None:
        await info.context.risk.book.changed()
    async with info.context.db.fresh_sessions() as session:
        found = await risk_reads.rule_by_id(session, rule_id)
    return RiskRulePayload(rule=RiskRule.from_model(*found) if found else None, user_errors=[])


@strawberry.type
class RiskMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Add a risk rule; it applies from the next order.")
    async def create_risk_rule(self, info: Info, input: CreateRiskRuleInput) -> RiskRulePayload:
        draft = risk_rules.RuleDraft(
            name=input.name, kind=RuleKind(input.kind.value), parameters=input.parameters,  # type: ignore[attr-defined]
            action=Decision(input.action.value), score=input.score, channel=input.channel,  # type: ignore[attr-defined]
            enabled=input.enabled,
        )
        return await _rule_command(info, risk_rules.create_rule, draft)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Change a risk rule; recorded with its before and after.")
    async def update_risk_rule(self, info: Info, id: strawberry.ID, input: UpdateRiskRuleInput) -> RiskRulePayload:
        draft = risk_rules.RuleDraft(
            name=input.name, parameters=input.parameters,
            action=Decision(input.action.value) if input.action is not None else None,
            score=input.score, channel=input.channel, all_channels=input.all_channels,
        )
        return await _rule_command(info, risk_rules.update_rule, decode_pk(id, "RiskRule"), draft)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Switch a risk rule on or off.")
    async def set_risk_rule_enabled(self, info: Info, id: strawberry.ID, enabled: bool) -> RiskRulePayload:
        return await _rule_command(info, risk_rules.set_enabled, decode_pk(id, "RiskRule"), enabled)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Retire a risk rule for good; its history stays readable.")
    async def archive_risk_rule(self, info: Info, id: strawberry.ID) -> RiskRulePayload:
        return await _rule_command(info, risk_rules.archive_rule, decode_pk(id, "RiskRule"))

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Decide an order held for review: PASS approves, REJECT releases its stock.")
    async def review_order(
        self, info: Info, order_id: strawberry.ID, decision: RiskDecision, note: str | None = None  # type: ignore[valid-type]
    ) -> ReviewOrderPayload:
        pk = decode_pk(order_id, "Order", field="orderId")
        ttl = timedelta(seconds=info.context.settings.order_ttl_seconds)
        async with info.context.uow() as uow:
            found = await locked_order(uow, info.context.principal, pk)
            if found is None:
                return ReviewOrderPayload(order=None, user_errors=[NOT_FOUND])
            row, channel = found
            outcome = await review.review_order(
                uow, row, Decision(decision.value), note,  # type: ignore[attr-defined]
                actor=info.context.principal.actor, now=info.context.now, ttl=ttl,
            )
        errors = [UserError(field=outcome.error_field or "orderId", message=outcome.message, code=outcome.error_code)] if outcome.error_code else []
        order = Order.from_model(outcome.order, ChannelScope.of(channel)) if outcome.order is not None else None
        return ReviewOrderPayload(order=order, user_errors=errors)


@strawberry.type
class RiskQuery:
    @strawberry.field(permission_classes=ADMIN_ONLY, description="Risk rules, oldest first.")
    async def risk_rules(self, info: Info, include_archived: bool = False) -> list[RiskRule]:
        async with info.context.db.fresh_sessions() as session:
            return [RiskRule.from_model(*found) for found in await risk_reads.rules(session, include_archived=include_archived)]

    @strawberry.field(permission_classes=ADMIN_ONLY, description="Changes to risk rules, newest first: who, when, before, after.")
    async def risk_rule_changes(
        self, info: Info, rule_id: strawberry.ID | None = None, first: int | None = 20, after: str | None = None
    ) -> RiskRuleChangeConnection:
        limit = page_size(first, default=20, maximum=info.context.settings.limits.max_page_size)
        before = decode_cursor(after, "RiskRuleChange") if after is not None else None
        rule = decode_pk(rule_id, "RiskRule", field="ruleId") if rule_id is not None else None
        async with info.context.db.fresh_sessions() as session:
            rows, more = await risk_reads.rule_changes(session, rule_id=rule, before_id=before, limit=limit)
        edges = [RiskRuleChangeEdge(cursor=encode_cursor("RiskRuleChange", row.id), node=RiskRuleChange.from_model(row, name))
                 for row, name in rows]
        return RiskRuleChangeConnection(edges=edges, page_info=page_info([edge.cursor for edge in edges], more=more, after=after))

    @strawberry.field(permission_classes=[HasKey], description="Risk verdicts, newest first: operators see all, a partner its own channel's.")
    async def risk_verdicts(
        self,
        info: Info,
        decision: RiskDecision | None = None,  # type: ignore[valid-type]
        channel: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> RiskVerdictConnection:
        principal = info.context.principal
        if not principal.is_admin:
            if principal.role is not Role.PARTNER or principal.channel is None:
                raise Forbidden("risk verdicts are read by operators and partners")
            if channel is not None and channel != principal.channel:
                raise Forbidden("a partner reads its own channel's verdicts only", field="channel")
            channel = principal.channel
        limit = page_size(first, default=20, maximum=info.context.settings.limits.max_page_size)
        channel_row = await info.context.loaders.channel_by_code.load(channel) if channel else None
        if channel is not None and channel_row is None:
            raise BadUserInput(f"unknown channel {channel!r}", field="channel")
        before = decode_cursor(after, "RiskVerdict") if after is not None else None
        async with info.context.db.fresh_sessions() as session:
            rows, more = await risk_reads.verdict_page(
                session, decision=Decision(decision.value) if decision is not None else None,
                channel_id=channel_row.id if channel_row else None, before_id=before, limit=limit,
            )
        edges = [RiskVerdictEdge(cursor=encode_cursor("RiskVerdict", row.id), node=RiskVerdict.from_model(row, code))
                 for row, code in rows]
        return RiskVerdictConnection(edges=edges, page_info=page_info([edge.cursor for edge in edges], more=more, after=after))


async def risk_node(info: Info, type_name: str, pk: int) -> RiskVerdict | RiskRule | None:
    """`node(id:)` for verdicts (operators, and the channel's partner) and rules (operators)."""
    principal = info.context.principal
    async with info.context.db.fresh_sessions() as session:
        if type_name == "RiskVerdict":
            found = await risk_reads.verdict_by_id(session, pk)
            if found is None or not may_read_risk(principal, found[1]):
                return None
            return RiskVerdict.from_model(*found)
        if type_name == "RiskRule" and principal.is_admin:
            rule = await risk_reads.rule_by_id(session, pk)
            return RiskRule.from_model(*rule) if rule else None
    return None
