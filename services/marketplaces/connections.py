"""Marketplace connections: how a channel reaches its marketplace, and the adapters built
from them.

A connection holds the open platform's address, the app key and the app secret, sealed with
the secret key and bound to the channel (as payment keys and supplier secrets are), opened
only to build the adapter. Configuring one also queues its pull job (services/marketplaces/
pull.py): the job runs for as long as the connection exists, one run at a time in the whole
deployment, each run queueing the next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from marketplaces.base import MarketplaceAdapter
from marketplaces.http import KIND, OpenPlatformAdapter
from models import Channel, MarketplaceConnection
from services.core import jobs
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.marketplace_events.connected import CONNECTED, TOPIC

log = logging.getLogger("quanyi.marketplaces")

PULL = "marketplace.pull"  # the job kind: pull one connection's trades and refunds
Factory = Callable[[MarketplaceConnection, str], MarketplaceAdapter]
FACTORIES: dict[str, Factory] = {
    KIND: lambda row, secret: OpenPlatformAdapter(row.base_url, row.app_key, secret, timeout_seconds=row.timeout_seconds),
}


class ConfigError(ValueError):
    pass


def _context(channel_id: int) -> bytes:
    return f"marketplace:{channel_id}".encode()


def seal_secret(box: SecretBox, channel_id: int, secret: str) -> bytes:
    return box.seal(secret, context=_context(channel_id))


def pull_key(connection_id: int) -> str:
    return f"{PULL}:{connection_id}"


@dataclass(frozen=True, slots=True)
class Connection:
    """What the services need of a connection row, with its channel's code."""

    id: int
    channel_id: int
    channel: str
    outer_ids: Mapping[str, str]
    poll_seconds: int
    enabled: bool


async def configure(
    session: AsyncSession, box: SecretBox, *, channel: str, base_url: str, app_key: str, app_secret: str, now: datetime,
    adapter: str = KIND, poll_seconds: int = 60, timeout_seconds: float = 10.0, outer_ids: Mapping[str, str] | None = None,
) -> int:
    """Write (or replace) how `channel` reaches its marketplace and queue its pull; the
    connection's id. The caller commits, then publishes TOPIC and tells CONNECTED."""
    if adapter not in FACTORIES:
        raise ConfigError(f"unknown marketplace adapter {adapter!r} (known: {', '.join(sorted(FACTORIES))})")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError("the endpoint is an http(s) URL")
    if not app_key.strip() or not app_secret:
        raise ConfigError("an app key and an app secret are required")
    if not 1 <= poll_seconds <= 86_400:
        raise ConfigError("the poll interval is 1 to 86400 seconds")
    channel_id = await session.scalar(select(Channel.id).where(Channel.code == channel))
    if channel_id is None:
        raise ConfigError(f"unknown channel {channel!r}")
    values = dict(
        channel_id=channel_id, adapter=adapter, base_url=base_url.rstrip("/"), app_key=app_key.strip(),
        secret_ciphertext=seal_secret(box, channel_id, app_secret), outer_ids=dict(outer_ids or {}),
        poll_seconds=poll_seconds, timeout_seconds=timeout_seconds, enabled=True, created_at=now, updated_at=now,
    )
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = insert(MarketplaceConnection).values(**values)
    connection_id = (await session.execute(statement.on_conflict_do_update(
        index_elements=[MarketplaceConnection.channel_id],
        set_={k: statement.excluded[k] for k in values if k not in ("channel_id", "created_at")},
    ).returning(MarketplaceConnection.id))).scalar_one()
    await jobs.enqueue(session, PULL, pull_key(connection_id), now=now, payload={"connection": connection_id})
    return int(connection_id)


class Markets:
    """The adapters of the connections, one per connection, rebuilt when its row changes."""

    def __init__(self, db: Database, box: SecretBox, factories: Mapping[str, Factory] | None = None) -> None:
        self._db, self._box = db, box
        self._factories = dict(FACTORIES if factories is None else factories)
        self._adapters: dict[int, tuple[datetime, MarketplaceAdapter]] = {}

    async def connection(self, session: AsyncSession, *, connection_id: int | None = None,
                         channel: str | None = None) -> tuple[Connection, MarketplaceAdapter] | None:
        """A connection (by id or by its channel's code) and its adapter; None when there is
        no such connection or it cannot be reached (no factory for its kind)."""
        query = select(MarketplaceConnection, Channel.code).join(Channel, Channel.id == MarketplaceConnection.channel_id)
        if connection_id is not None:
            query = query.where(MarketplaceConnection.id == connection_id)
        else:
            query = query.where(Channel.code == channel)
        found = (await session.execute(query)).first()
        if found is None:
            return None
        row, code = found
        adapter = await self._adapter(row)
        if adapter is None:
            return None
        return Connection(row.id, row.channel_id, code, dict(row.outer_ids or {}), row.poll_seconds, row.enabled), adapter

    async def _adapter(self, row: MarketplaceConnection) -> MarketplaceAdapter | None:
        kept = self._adapters.get(row.id)
        if kept is not None and kept[0] == row.updated_at:
            return kept[1]
        factory = self._factories.get(row.adapter)
        if factory is None:
            log.warning("marketplace connection %d: no adapter of kind %r", row.id, row.adapter)
            return None
        adapter = factory(row, self._box.open(row.secret_ciphertext, context=_context(row.channel_id)))
        self._adapters[row.id] = (row.updated_at, adapter)
        if kept is not None:
            await kept[1].close()
        return adapter

    async def close(self) -> None:
        for _, adapter in self._adapters.values():
            await adapter.close()
        self._adapters.clear()


def changed() -> None:
    """This process forgets which channels are connected (others hear TOPIC)."""
    CONNECTED.forget()


__all__ = ["TOPIC", "ConfigError", "Connection", "Markets", "configure", "changed"]
