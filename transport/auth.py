"""Who is calling: the principal behind an `Authorization: Bearer` credential."""

from __future__ import annotations

from collections.abc import Mapping

from domain.access import ANONYMOUS, Principal
from schema.errors import Unauthenticated


def bearer(value: str | None) -> str | None:
    """The credential of an `Authorization: Bearer <credential>` value."""
    if not value:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthenticated("use Authorization: Bearer <key>")
    return credential.strip()


async def principal_for(headers: Mapping[str, str]) -> Principal:
    """Anonymous without a credential. No key can be verified until keys are issued,
    so a credential is refused rather than silently treated as anonymous."""
    credential = bearer(headers.get("authorization"))
    if credential is None:
        return ANONYMOUS
    raise Unauthenticated("unknown or revoked key")
