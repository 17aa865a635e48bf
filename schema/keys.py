"""API key types: what an operator sees of a key (never the key itself)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.access import Role as RoleValue
from models import keys as rows
from schema.relay import Node, encode_id

Role = strawberry.enum(RoleValue, description="What a key may do: operate, trade as a partner, or serve a storefront.")


@strawberry.type(description="A budget of query cost: a bucket of points refilled every second.")
class KeyBudget:
    maximum_available: int
    restore_rate: int


@strawberry.type(description="An API key; only its prefix is kept in clear.")
class ApiKey(Node):
    prefix: str
    role: Role  # type: ignore[valid-type]
    channel: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None
    budget: KeyBudget | None = strawberry.field(description="The key's own budget; null: its role's.")

    @classmethod
    def from_model(cls, row: rows.ApiKey, channel: str | None) -> ApiKey:
        return cls(
            id=encode_id("ApiKey", row.id),
            prefix=row.prefix,
            role=row.role,
            channel=channel,
            name=row.name,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            expires_at=row.expires_at,
            budget=KeyBudget(maximum_available=row.budget_maximum, restore_rate=row.budget_restore_rate)
            if row.budget_maximum is not None and row.budget_restore_rate is not None else None,
        )
