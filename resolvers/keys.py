"""API keys: operators issue and revoke them; a channel's keys may list their own channel's."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry
from sqlalchemy import select

from domain.access import Allowance, may_read_channel_private
from domain.access import Role as RoleValue
from domain.admission import check_allowance
from models import ApiKey as ApiKeyRow
from models import Channel as ChannelRow
from schema.context import Info
from schema.errors import Forbidden, UserError
from schema.keys import ApiKey, Role
from schema.permissions import ADMIN_ONLY, HasKey
from schema.relay import decode_pk
from services.access import keys


@strawberry.input
class CreateApiKeyInput:
    role: Role  # type: ignore[valid-type]
    channel: str | None = strawberry.field(default=None, description="Required for PARTNER and STOREFRONT keys.")
    name: str = ""
    expires_at: datetime | None = strawberry.field(
        default=None, description="When the key stops working, and the WebSockets opened with it close; null: when revoked."
    )


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKey | None
    secret: str | None = strawberry.field(description="The key itself: shown this once, never again.")
    user_errors: list[UserError]


@strawberry.input(description="A key's own budget; both null: its role's budget again.")
class SetApiKeyBudgetInput:
    id: strawberry.ID
    maximum: int | None = strawberry.field(default=None, description="Points a full bucket holds.")
    restore_rate: int | None = strawberry.field(default=None, description="Points restored each second.")


@strawberry.type
class SetApiKeyBudgetPayload:
    api_key: ApiKey | None
    user_errors: list[UserError]


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKey | None
    user_errors: list[UserError]


async def _key_with_channel(session: object, key_id: int) -> tuple[ApiKeyRow, str | None] | None:
    found = (
        await session.execute(  # type: ignore[attr-defined]
            select(ApiKeyRow, ChannelRow.code)
            .outerjoin(ChannelRow, ChannelRow.id == ApiKeyRow.channel_id)
            .where(ApiKeyRow.id == key_id)
        )
    ).first()
    return (found[0], found[1]) if found else None


@strawberry.type
class KeysMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Issue an API key; the secret is in the answer once.")
    async def create_api_key(self, info: Info, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        role = RoleValue(input.role.value)
        if input.expires_at is not None and input.expires_at <= datetime.now(UTC):
            problem = UserError(field="expiresAt", message="a key expires in the future", code="INVALID_EXPIRY")
            return CreateApiKeyPayload(api_key=None, secret=None, user_errors=[problem])
        async with info.context.uow() as uow:
            try:
                issued = await keys.issue_key(
                    uow.session, role=role, channel=input.channel, name=input.name, expires_at=input.expires_at
                )
            except keys.KeyError_ as error:
                problem = UserError(field="channel", message=str(error), code="INVALID_CHANNEL")
                return CreateApiKeyPayload(api_key=None, secret=None, user_errors=[problem])
            row, channel = await _key_with_channel(uow.session, issued.id) or (None, None)
        assert row is not None
        return CreateApiKeyPayload(api_key=ApiKey.from_model(row, channel), secret=issued.plaintext, user_errors=[])

    @strawberry.mutation(
        permission_classes=ADMIN_ONLY,
        description="Revoke a key at once: every process refuses it, and closes the WebSockets opened with it (4403).",
    )
    async def revoke_api_key(self, info: Info, id: strawberry.ID) -> RevokeApiKeyPayload:
        pk = decode_pk(id, "ApiKey")
        async with info.context.uow() as uow:
            if not await keys.revoke_key(uow.session, pk):
                problem = UserError(field="id", message="no such active key", code="NOT_FOUND")
                return RevokeApiKeyPayload(api_key=None, user_errors=[problem])
            row, channel = await _key_with_channel(uow.session, pk) or (None, None)
        if row is not None:
            await info.context.authenticator.revoked(row.prefix)
        return RevokeApiKeyPayload(api_key=ApiKey.from_model(row, channel) if row else None, user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Give a key its own budget of query cost, or its role's again.")
    async def set_api_key_budget(self, info: Info, input: SetApiKeyBudgetInput) -> SetApiKeyBudgetPayload:
        pk = decode_pk(input.id, "ApiKey")
        if (input.maximum is None) != (input.restore_rate is None):
            problem = UserError(field="restoreRate", message="give both maximum and restoreRate, or neither", code="INVALID_BUDGET")
            return SetApiKeyBudgetPayload(api_key=None, user_errors=[problem])
        allowance = None
        if input.maximum is not None and input.restore_rate is not None:
            reason = check_allowance(input.maximum, input.restore_rate)
            if reason is not None:
                field = "maximum" if reason.startswith("maximum") else "restoreRate"
                return SetApiKeyBudgetPayload(api_key=None, user_errors=[UserError(field=field, message=reason, code="INVALID_BUDGET")])
            allowance = Allowance(input.maximum, input.restore_rate)
        async with info.context.uow() as uow:
            if not await keys.set_budget(uow.session, pk, allowance):
                problem = UserError(field="id", message="no such active key", code="NOT_FOUND")
                return SetApiKeyBudgetPayload(api_key=None, user_errors=[problem])
            row, channel = await _key_with_channel(uow.session, pk) or (None, None)
        assert row is not None
        await info.context.authenticator.changed(row.prefix)
        return SetApiKeyBudgetPayload(api_key=ApiKey.from_model(row, channel), user_errors=[])


@strawberry.type
class KeysQuery:
    @strawberry.field(permission_classes=[HasKey], description="Keys: operators see all, a partner its own channel's.")
    async def api_keys(self, info: Info, include_revoked: bool = False) -> list[ApiKey]:
        principal = info.context.principal
        query = select(ApiKeyRow, ChannelRow.code).outerjoin(ChannelRow, ChannelRow.id == ApiKeyRow.channel_id)
        if not principal.is_admin:
            if principal.channel is None or not may_read_channel_private(principal, principal.channel):
                raise Forbidden("keys are listed for operators and partners")
            query = query.where(ChannelRow.code == principal.channel)
        if not include_revoked:
            query = query.where(ApiKeyRow.revoked_at.is_(None))
        # From the primary: a key just revoked or issued is listed as it now is.
        async with info.context.db.fresh_sessions() as session:
            rows = (await session.execute(query.order_by(ApiKeyRow.id))).all()
        return [
            ApiKey.from_model(row, code)
            for row, code in rows
            if principal.is_admin or (code is not None and may_read_channel_private(principal, code))
        ]
