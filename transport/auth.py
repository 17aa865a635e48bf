"""Reading an `Authorization: Bearer` header; the gateway verifies what it carries."""

from __future__ import annotations

from schema.errors import Unauthenticated


def bearer(value: str | None) -> str | None:
    """The credential of an `Authorization: Bearer <credential>` value; None without one."""
    if not value:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise Unauthenticated("use Authorization: Bearer <key>")
    return credential.strip()
