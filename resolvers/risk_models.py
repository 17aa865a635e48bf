"""The learned risk model: stored versions, the active one, and what attempts turned out to be."""

from __future__ import annotations

import enum
from typing import Annotated

import strawberry

from schema.context import Info
from schema.errors import UserError
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk
from schema.risk_models import RiskModel
from services.risk import labels, models


@strawberry.enum(description="Who says what an attempt turned out to be.")
class RiskLabelSource(enum.Enum):
    CHARGEBACK = "CHARGEBACK"
    OPERATOR = "OPERATOR"


@strawberry.type
class LabelRiskVerdictPayload:
    labelled: bool
    user_errors: list[UserError]


@strawberry.type
class ActivateRiskModelPayload:
    model: RiskModel | None
    user_errors: list[UserError]


@strawberry.type
class RiskModelMutation:
    @strawberry.mutation(
        permission_classes=ADMIN_ONLY,
        description="Record what an attempt turned out to be (a chargeback, a fraud report): the next model learns from it.",
    )
    async def label_risk_verdict(
        self, info: Info, verdict_id: strawberry.ID, fraud: bool,
        # "source" is the resolver machinery's own argument name: the Python name differs.
        origin: Annotated[RiskLabelSource, strawberry.argument(name="source")] = RiskLabelSource.OPERATOR,
    ) -> LabelRiskVerdictPayload:
        pk = decode_pk(verdict_id, "RiskVerdict", field="verdictId")
        async with info.context.uow() as uow:
            done = await labels.label_verdict(
                uow.session, pk, fraud=fraud, source=origin.value, actor=info.context.principal.actor,
                now=info.context.now,
            )
        errors = [] if done else [UserError(field="verdictId", message="no such verdict", code="NOT_FOUND")]
        return LabelRiskVerdictPayload(labelled=done, user_errors=errors)

    @strawberry.mutation(
        permission_classes=ADMIN_ONLY,
        description="Make a stored model the one every gateway scores with; null: none (model rules then match nothing).",
    )
    async def activate_risk_model(self, info: Info, version: str | None) -> ActivateRiskModelPayload:
        try:
            async with info.context.uow() as uow:
                await models.activate_model(uow.session, version, now=info.context.now)
        except models.ModelError as error:
            return ActivateRiskModelPayload(model=None, user_errors=[UserError(field="version", message=str(error), code="NOT_FOUND")])
        if info.context.risk is not None and info.context.risk.models is not None:
            await info.context.risk.models.changed()
        async with info.context.db.fresh_sessions() as session:
            found = [m for m in await models.stored_models(session) if m.version == version]
        return ActivateRiskModelPayload(model=RiskModel.from_stored(found[0]) if found else None, user_errors=[])


@strawberry.type
class RiskModelQuery:
    @strawberry.field(permission_classes=ADMIN_ONLY, description="Stored risk models, newest first.")
    async def risk_models(self, info: Info) -> list[RiskModel]:
        async with info.context.db.fresh_sessions() as session:
            return [RiskModel.from_stored(m) for m in await models.stored_models(session)]
