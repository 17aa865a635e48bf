"""The demo's marketplace: a simulated open platform served by the gateway process itself,
connected to the `taobao` channel.

`quanyi serve --demo` mounts it under /demo-marketplace/taobao and connects the channel to
it, so a trade "bought" there (POST /demo-marketplace/taobao/control/trades) is pulled (or
pushed, with "push": true), fulfilled, and its delivery reported back, with nothing else
running. One gateway process only: each process would have a marketplace of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.applications import Starlette
from starlette.routing import Mount

from broker import Broker
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.marketplaces import connections

CHANNEL = "taobao"
PREFIX = f"/demo-marketplace/{CHANNEL}"
APP_KEY = "demo-taobao"
POLL_SECONDS = 5


def demo_secret(secret_key: bytes) -> str:
    """The demo marketplace's app secret, derived from the secret key (never the key itself)."""
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=b"quanyi demo marketplace v1").derive(secret_key).hex()


def simulator(secret: str, public_url: str) -> Starlette:
    from marketplaces.simulator import create_marketplace

    return create_marketplace(APP_KEY, secret, push_url=f"{public_url.rstrip('/')}/marketplaces/{CHANNEL}/push")


def mounts(app: Starlette | None) -> list[Mount]:
    return [Mount(PREFIX, app=app)] if app is not None else []


@contextlib.asynccontextmanager
async def running(app: Starlette, db: Database, broker: Broker, box: SecretBox, secret: str,
                  public_url: str) -> AsyncIterator[None]:
    """Connect the taobao channel to the mounted marketplace, and run the marketplace."""
    async with db.sessions() as session, session.begin():
        await connections.configure(
            session, box, channel=CHANNEL, base_url=f"{public_url.rstrip('/')}{PREFIX}", app_key=APP_KEY,
            app_secret=secret, now=datetime.now(UTC), poll_seconds=POLL_SECONDS, timeout_seconds=5.0,
        )
    await broker.publish(connections.TOPIC, b"")
    connections.changed()
    async with app.state.marketplace.running(app):
        yield
