"""API key types: what an operator sees of a key (never the key itself)."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.access import Role as RoleValue
from models import keys as rows
from schema.relay import Node, encode_id

Role = strawberry.enum(RoleValue, description="What a key may do: operate, trade as a partner, or serve a storefront.")


@strawberry.type(description="An API key; only its prefix is kept in clear.")
class ApiKey(Node):
    prefix: str
    role: Role  # type: ignore[valid-type]
    channel: str | None
    name: str
    created_at: datetime
    revoked_at: datetime | None

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
        )
