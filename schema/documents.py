"""Trusted document types: what operators see of a registered GraphQL document."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import documents as rows


@strawberry.type(description="A GraphQL document operators registered: for every caller, or for one key.")
class TrustedDocument:
    sha256_hash: str = strawberry.field(description="The SHA-256 of the exact text, lower-case hex: how clients send it.")
    name: str = strawberry.field(description="The name of its operation, if it has one.")
    key_prefix: str | None = strawberry.field(description="The key it is registered for; null: every caller.")
    body: str
    created_at: datetime
    created_by: str

    @classmethod
    def from_model(cls, row: rows.TrustedDocument) -> TrustedDocument:
        return cls(
            sha256_hash=row.digest, name=row.name, key_prefix=row.key_prefix or None, body=row.body,
            created_at=row.created_at, created_by=row.created_by,
        )
