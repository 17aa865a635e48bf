"""A marketplace's app secret: sealed in the database, bound to its channel."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select

from config import Settings
from models import MarketplaceConnection
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.marketplace_events.connected import CONNECTED
from services.marketplaces import connections


async def test_the_app_secret_is_sealed_and_bound_to_its_channel(settings: Settings, db: Database) -> None:
    box = SecretBox(settings.secret_key)
    async with db.sessions() as session, session.begin():
        await connections.configure(session, box, channel="b2b-demo", base_url="https://open.example.com",
                                    app_key="k-1", app_secret="the-app-secret-1", now=datetime.now(UTC))
    try:
        async with db.fresh_sessions() as session:
            row = await session.scalar(select(MarketplaceConnection).where(MarketplaceConnection.app_key == "k-1"))
        assert row is not None and b"the-app-secret-1" not in bytes(row.secret_ciphertext)
        assert box.open(row.secret_ciphertext, context=f"marketplace:{row.channel_id}".encode()) == "the-app-secret-1"
        with pytest.raises(Exception):  # noqa: B017 - sealed for one channel, opened for none other
            box.open(row.secret_ciphertext, context=f"marketplace:{row.channel_id + 1}".encode())
    finally:
        async with db.sessions() as session, session.begin():
            await session.execute(delete(MarketplaceConnection).where(MarketplaceConnection.app_key == "k-1"))
        await CONNECTED.refresh(db)  # as it was: no channel connected


@pytest.mark.parametrize(("changes", "message"), [
    ({"channel": "no-such-channel"}, "unknown channel"),
    ({"base_url": "ftp://open.example.com"}, r"http\(s\) URL"),
    ({"app_secret": ""}, "app secret"),
    ({"poll_seconds": 0}, "poll interval"),
    ({"adapter": "carrier-pigeon"}, "unknown marketplace adapter"),
])
async def test_a_connection_that_cannot_work_is_refused(settings: Settings, db: Database, changes: dict[str, object],
                                                        message: str) -> None:
    given: dict[str, object] = {"channel": "b2b-demo", "base_url": "https://open.example.com", "app_key": "k-2",
                                "app_secret": "s", "now": datetime.now(UTC), **changes}
    async with db.sessions() as session, session.begin():
        with pytest.raises(connections.ConfigError, match=message):
            await connections.configure(session, SecretBox(settings.secret_key), **given)  # type: ignore[arg-type]
