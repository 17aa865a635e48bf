"""Risk rules (data, not code), the audit of every change to them, and stored verdicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.risk import Decision, RuleKind
from models.base import Base, str_enum, utcnow


class RiskRule(Base):
    __tablename__ = "risk_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[RuleKind] = mapped_column(str_enum(RuleKind))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    action: Mapped[Decision] = mapped_column(str_enum(Decision))
    score: Mapped[int]
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("channel.id"))  # None: every channel
    enabled: Mapped[bool] = mapped_column(default=True)
    archived_at: Mapped[datetime | None]  # archived rules never apply again; their history stays
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskRuleChange(Base):
    """One change to a rule: who, when, what it was before and after. Rows are only ever added."""

    __tablename__ = "risk_rule_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("risk_rule.id"), index=True)
    actor: Mapped[str] = mapped_column(String(120))
    change: Mapped[str] = mapped_column(String(16))  # CREATED, UPDATED, ENABLED, DISABLED, ARCHIVED
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskVerdict(Base):
    """The verdict on one order attempt, with the facts it was reached on.

    A rejected attempt creates no order: its verdict is the only record of it.
    """

    __tablename__ = "risk_verdict"
    __table_args__ = (
        Index("ix_risk_verdict_channel", "channel_id", "id"),
        Index("ix_risk_verdict_decision", "decision", "id"),
        Index("ix_risk_verdict_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("order.id"), unique=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channel.id"))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    decision: Mapped[Decision] = mapped_column(str_enum(Decision))
    score: Mapped[int]
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RiskModel(Base):
    """A trained risk model, versioned: at most one is active, and every gateway scores with it."""

    __tablename__ = "risk_model"

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)  # domain.risk_model.Model.as_record()
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None]


class RiskLabel(Base):
    """What an attempt turned out to be: fraud or honest, and who said so (the model learns from these)."""

    __tablename__ = "risk_label"

    id: Mapped[int] = mapped_column(primary_key=True)
    verdict_id: Mapped[int] = mapped_column(ForeignKey("risk_verdict.id"), unique=True)
    fraud: Mapped[bool]
    source: Mapped[str] = mapped_column(String(16))  # REVIEW, CHARGEBACK, OPERATOR
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
