"""Resolving the channel a query names, checked against the caller once, here."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import may_read_channel
from models import Channel
from schema.channel import NO_CHANNEL, ChannelScope
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


async def caller_scope(info: Info) -> ChannelScope:
    """The channel a look-up without a channel argument is priced for: the key's own."""
    code = info.context.principal.channel
    if code is None:
        return NO_CHANNEL
    row = await info.context.loaders.channel_by_code.load(code)
    return ChannelScope.of(row) if row is not None else NO_CHANNEL


async def channel_for_operator(session: AsyncSession, code: str) -> Channel:
    """The channel an operator's command names; unknown is the caller's error."""
    row = await session.scalar(select(Channel).where(Channel.code == code))
    if row is None:
        raise BadUserInput(f"unknown channel {code!r}", field="channel")
    return row
