"""Trained risk models kept in the database, versioned; at most one active, read by every gateway.

Activating a model commits, then the caller announces MODEL_CHANGED: each process drops its
copy (services/risk/check.py ModelBook) and reads the new one on its next scored order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.risk_model import Model, ModelError
from models import RiskModel

log = logging.getLogger("quanyi.risk")

MODEL_CHANGED = "risk.model.changed"


@dataclass(frozen=True, slots=True)
class StoredModel:
    version: str
    active: bool
    metrics: dict[str, Any]
    created_at: datetime
    activated_at: datetime | None


async def active_model(session: AsyncSession) -> Model | None:
    row = await session.scalar(select(RiskModel).where(RiskModel.active.is_(True)).limit(1))
    if row is None:
        return None
    try:
        return Model.from_record(row.record)
    except ModelError as error:  # a model this gateway cannot use scores nothing; rules still apply
        log.error("risk model %s cannot be used: %s", row.version, error)
        return None


async def store_model(session: AsyncSession, model: Model, *, activate: bool, now: datetime) -> None:
    """Keep a trained model under its version (a version is stored once); make it the active one if asked."""
    model.check()
    if await session.scalar(select(RiskModel.id).where(RiskModel.version == model.version)) is not None:
        raise ModelError(f"a model {model.version!r} is already stored")
    session.add(RiskModel(version=model.version, record=model.as_record(), metrics=dict(model.metrics), created_at=now))
    await session.flush()
    if activate:
        await activate_model(session, model.version, now=now)


async def activate_model(session: AsyncSession, version: str | None, *, now: datetime) -> None:
    """Make `version` the active model; None: no model scores (model rules then match nothing)."""
    if version is not None and await session.scalar(select(RiskModel.id).where(RiskModel.version == version)) is None:
        raise ModelError(f"no model {version!r}")
    await session.execute(update(RiskModel).where(RiskModel.active.is_(True)).values(active=False))
    if version is not None:
        await session.execute(
            update(RiskModel).where(RiskModel.version == version).values(active=True, activated_at=now)
        )


async def stored_models(session: AsyncSession) -> list[StoredModel]:
    rows = await session.execute(
        select(RiskModel.version, RiskModel.active, RiskModel.metrics, RiskModel.created_at, RiskModel.activated_at)
        .order_by(RiskModel.id.desc())
    )
    return [StoredModel(*row) for row in rows]
