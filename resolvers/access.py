"""Resolving the channel a query names, checked against the caller once, here."""

from __future__ import annotations

from domain.access import may_read_channel
from models import Channel
from schema.context import Info
from schema.errors import BadUserInput, Forbidden


async def readable_channel(info: Info, code: str) -> Channel:
    """The channel named by `code`, if it exists, is active and the caller may read it."""
    row = await info.context.loaders.channel_by_code.load(code)
    if row is None or not row.active:
        raise BadUserInput(f"unknown channel {code!r}", field="channel")
    if not may_read_channel(info.context.principal, row.code, public=row.public):
        raise Forbidden(f"channel {code!r} needs a key of that channel", field="channel")
    return row
