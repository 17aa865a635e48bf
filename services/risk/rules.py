"""Risk rules as data: created, changed, switched and archived by operators, every change audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.risk import DEFAULT_SCORE, Decision, Rule, RuleKind
from domain.risk_parameters import RuleParameterError, check_parameters
from models import Channel, RiskRule, RiskRuleChange

RULES_CHANGED = "risk.rules.changed"


class RuleError(ValueError):
    def __init__(self, field: str, message: str, code: str = "INVALID_INPUT") -> None:
        super().__init__(message)
        self.field, self.message, self.code = field, message, code


@dataclass(frozen=True, slots=True)
class RuleDraft:
    """What an operator sends; None leaves a field as it is on update."""

    name: str | None = None
    kind: RuleKind | None = None
    parameters: Any = None
    action: Decision | None = None
    score: int | None = None
    channel: str | None = None
    all_channels: bool = False  # on update: clear the channel scope
    enabled: bool | None = None


def snapshot(rule: RiskRule, channel: str | None) -> dict[str, Any]:
    """The audited picture of a rule."""
    return {
        "name": rule.name, "kind": rule.kind.value, "parameters": rule.parameters, "action": rule.action.value,
        "score": rule.score, "channel": channel, "enabled": rule.enabled, "archived": rule.archived_at is not None,
    }


async def _channel_id(session: AsyncSession, code: str | None) -> int | None:
    if code is None:
        return None
    found = await session.scalar(select(Channel.id).where(Channel.code == code))
    if found is None:
        raise RuleError("channel", f"unknown channel {code!r}", "UNKNOWN_CHANNEL")
    return found


async def _channel_code(session: AsyncSession, channel_id: int | None) -> str | None:
    return None if channel_id is None else await session.scalar(select(Channel.code).where(Channel.id == channel_id))


def _checked(kind: RuleKind, parameters: Any, action: Decision, score: int | None) -> tuple[dict[str, Any], int]:
    if action is Decision.PASS:
        raise RuleError("action", "a rule's action is REVIEW or REJECT")
    try:
        params = check_parameters(kind, parameters)
    except RuleParameterError as error:
        raise RuleError(error.field, error.message, "INVALID_PARAMETERS") from None
    score = DEFAULT_SCORE[action] if score is None else score
    if not 0 <= score <= 100:
        raise RuleError("score", "score is from 0 to 100")
    return params, score


async def _name_free(session: AsyncSession, name: str, rule_id: int | None = None) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 120:
        raise RuleError("name", "a rule's name is 1 to 120 characters")
    taken = await session.scalar(select(RiskRule.id).where(RiskRule.name == name))
    if taken is not None and taken != rule_id:
        raise RuleError("name", f"a rule named {name!r} exists already", "DUPLICATE_NAME")
    return name


def _audit(session: AsyncSession, rule: RiskRule, actor: str, change: str, before: dict[str, Any] | None,
           after: dict[str, Any] | None, at: datetime) -> None:
    session.add(RiskRuleChange(rule_id=rule.id, actor=actor, change=change, before=before, after=after, at=at))


async def create_rule(session: AsyncSession, draft: RuleDraft, *, actor: str, at: datetime) -> RiskRule:
    if draft.kind is None or draft.action is None or draft.name is None:
        raise RuleError("kind", "a new rule needs a name, a kind and an action")
    name = await _name_free(session, draft.name)
    params, score = _checked(draft.kind, draft.parameters, draft.action, draft.score)
    channel_id = await _channel_id(session, draft.channel)
    rule = RiskRule(
        name=name, kind=draft.kind, parameters=params, action=draft.action, score=score, channel_id=channel_id,
        enabled=True if draft.enabled is None else draft.enabled, created_at=at, updated_at=at,
    )
    session.add(rule)
    await session.flush()
    _audit(session, rule, actor, "CREATED", None, snapshot(rule, draft.channel), at)
    return rule


async def _live(session: AsyncSession, rule_id: int) -> RiskRule:
    # The row lock queues two operators editing one rule, so neither change is lost.
    rule = await session.scalar(select(RiskRule).where(RiskRule.id == rule_id).with_for_update())
    if rule is None or rule.archived_at is not None:
        raise RuleError("id", "no such rule", "NOT_FOUND")
    return rule


async def update_rule(session: AsyncSession, rule_id: int, draft: RuleDraft, *, actor: str, at: datetime) -> RiskRule:
    rule = await _live(session, rule_id)
    before = snapshot(rule, await _channel_code(session, rule.channel_id))
    name = await _name_free(session, draft.name, rule.id) if draft.name is not None else rule.name
    action = draft.action or rule.action
    parameters = draft.parameters if draft.parameters is not None else rule.parameters
    # A new action without a new score takes that action's default score.
    score = draft.score if draft.score is not None else (rule.score if action is rule.action else None)
    params, score = _checked(rule.kind, parameters, action, score)
    if draft.all_channels:
        channel_id = None
    elif draft.channel is not None:
        channel_id = await _channel_id(session, draft.channel)
    else:
        channel_id = rule.channel_id
    rule.name, rule.action, rule.parameters, rule.score, rule.channel_id = name, action, params, score, channel_id
    if draft.enabled is not None:
        rule.enabled = draft.enabled
    rule.updated_at = at
    after = snapshot(rule, await _channel_code(session, channel_id))
    if after != before:
        _audit(session, rule, actor, "UPDATED", before, after, at)
    return rule


async def set_enabled(session: AsyncSession, rule_id: int, enabled: bool, *, actor: str, at: datetime) -> RiskRule:
    rule = await _live(session, rule_id)
    if rule.enabled != enabled:
        code = await _channel_code(session, rule.channel_id)
        before = snapshot(rule, code)
        rule.enabled, rule.updated_at = enabled, at
        _audit(session, rule, actor, "ENABLED" if enabled else "DISABLED", before, snapshot(rule, code), at)
    return rule


async def archive_rule(session: AsyncSession, rule_id: int, *, actor: str, at: datetime) -> RiskRule:
    """Archived, not deleted: verdicts and the change history keep naming it."""
    rule = await _live(session, rule_id)
    code = await _channel_code(session, rule.channel_id)
    before = snapshot(rule, code)
    rule.archived_at, rule.enabled, rule.updated_at = at, False, at
    _audit(session, rule, actor, "ARCHIVED", before, snapshot(rule, code), at)
    return rule


async def active_rules(session: AsyncSession) -> list[Rule]:
    """Enabled, unarchived rules in the form the engine evaluates."""
    rows = await session.execute(
        select(RiskRule, Channel.code)
        .outerjoin(Channel, Channel.id == RiskRule.channel_id)
        .where(RiskRule.enabled.is_(True), RiskRule.archived_at.is_(None))
        .order_by(RiskRule.id)
    )
    return [
        Rule(rule.id, rule.name, rule.kind, rule.parameters, rule.action, rule.score, code, rule.enabled)
        for rule, code in rows
    ]
