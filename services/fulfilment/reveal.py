"""Showing a line's codes: masked by default, in full only to who may, and every reveal audited."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from models import CodeReveal
from services.core.secret_box import SecretBox
from services.fulfilment.delivery import Code, sold_codes

VISIBLE = 4  # trailing characters a masked secret keeps


def mask(secret: str) -> str:
    """`ABCD-EFGH-1234` -> `**********1234`: enough to tell codes apart, not to use one."""
    keep = min(VISIBLE, len(secret) // 2)
    return "*" * (len(secret) - keep) + secret[len(secret) - keep:]


async def line_codes(session: AsyncSession, box: SecretBox, line_id: int, *, reveal: bool) -> list[Code]:
    codes = await sold_codes(session, box, line_id)
    if reveal:
        return codes
    return [Code(code.number, mask(code.secret), code.expires_at) for code in codes]


def record(session: AsyncSession, order_id: int, line_id: int, actor: str, client_ip: str | None, now: datetime) -> None:
    session.add(CodeReveal(order_id=order_id, line_id=line_id, actor=actor[:120], client_ip=client_ip, at=now))


async def reveals_of(session: AsyncSession, line_id: int) -> list[CodeReveal]:
    return list(await session.scalars(select(CodeReveal).where(CodeReveal.line_id == line_id).order_by(CodeReveal.id)))
