"""Seed rounds of a box: a new seed sealed with its commitment; opened only to draw or reveal.

The seed never leaves this module in clear except to the draw (in the order's transaction)
and to the reveal of a round whose draws are all settled. It is never logged.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.draws import SEED_BYTES, commitment
from models import DrawRound
from models.draws import OPEN
from services.core.secret_box import SecretBox


def _context(box_sku_id: int, number: int) -> bytes:
    return f"draw-round:{box_sku_id}:{number}".encode()


async def open_round(session: AsyncSession, seeds: SecretBox, box_sku_id: int, now: datetime) -> DrawRound:
    """A new OPEN round after the box's last one, with a fresh seed."""
    last = await session.scalar(select(func.max(DrawRound.number)).where(DrawRound.box_sku_id == box_sku_id))
    number = (last or 0) + 1
    seed = secrets.token_bytes(SEED_BYTES)
    round_ = DrawRound(
        box_sku_id=box_sku_id, number=number, status=OPEN, commitment=commitment(seed),
        seed_ciphertext=seeds.seal(seed.hex(), context=_context(box_sku_id, number)), opened_at=now,
    )
    session.add(round_)
    await session.flush()
    return round_


def seed_of(seeds: SecretBox, round_: DrawRound) -> bytes:
    return bytes.fromhex(seeds.open(round_.seed_ciphertext, context=_context(round_.box_sku_id, round_.number)))
