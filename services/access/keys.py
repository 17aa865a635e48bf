"""API keys: issue, verify, revoke. A key is shown once; the database keeps its hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import Allowance, Principal, Role
from models import ApiKey, Channel
from services.core.database import rows_changed

KEY_SCHEME = "qy"


class KeyError_(ValueError):
    """A key cannot be issued as asked (unknown channel, role without a channel)."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: int
    prefix: str
    role: Role
    channel: str | None
    plaintext: str  # shown once, never stored


def _digest(plaintext: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def _split(plaintext: str) -> str | None:
    scheme, _, rest = plaintext.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != KEY_SCHEME or len(prefix) != 10 or not secret:
        return None
    return prefix


async def issue_key(
    session: AsyncSession, *, role: Role, channel: str | None, name: str = "", expires_at: datetime | None = None
) -> IssuedKey:
    channel_id = None
    if channel is not None:
        channel_id = await session.scalar(select(Channel.id).where(Channel.code == channel))
        if channel_id is None:
            raise KeyError_(f"unknown channel {channel!r}")
    elif role is not Role.ADMIN:
        raise KeyError_(f"a {role.value} key needs a channel")
    prefix = secrets.token_hex(5)
    plaintext = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        prefix=prefix, digest=_digest(plaintext), role=role, channel_id=channel_id, name=name[:120],
        expires_at=expires_at,
    )
    session.add(row)
    await session.flush()
    return IssuedKey(row.id, prefix, role, channel, plaintext)


async def verify_key(session: AsyncSession, plaintext: str, now: datetime | None = None) -> Principal | None:
    """The principal a key stands for, or None if it is unknown, wrong, revoked or expired."""
    prefix = _split(plaintext)
    if prefix is None:
        return None
    found = (
        await session.execute(
            select(ApiKey, Channel.code)
            .outerjoin(Channel, Channel.id == ApiKey.channel_id)
            .where(ApiKey.prefix == prefix)
        )
    ).first()
    if found is None:
        return None
    key, channel = found
    if key.revoked_at is not None or not hmac.compare_digest(key.digest, _digest(plaintext)):
        return None
    if key.expires_at is not None and key.expires_at <= (now or datetime.now(UTC)):
        return None
    allowance = None
    if key.budget_maximum is not None and key.budget_restore_rate is not None:
        allowance = Allowance(key.budget_maximum, key.budget_restore_rate)
    return Principal(
        role=key.role, channel=channel, key_prefix=key.prefix, allowance=allowance, expires_at=key.expires_at
    )


async def still_valid(session: AsyncSession, prefixes: Collection[str], now: datetime) -> set[str]:
    """Of these keys (by prefix), the ones neither revoked nor expired: one statement."""
    if not prefixes:
        return set()
    rows = await session.scalars(
        select(ApiKey.prefix).where(
            ApiKey.prefix.in_(list(prefixes)),
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
        )
    )
    return set(rows)


async def set_budget(session: AsyncSession, key_id: int, allowance: Allowance | None) -> bool:
    """Give an active key its own budget, or (None) its role's again. False: no such active key."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(
            budget_maximum=allowance.maximum if allowance else None,
            budget_restore_rate=allowance.restore_rate if allowance else None,
        )
    )
    return bool(rows_changed(result))


async def revoke_key(session: AsyncSession, key_id: int) -> bool:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(rows_changed(result))
