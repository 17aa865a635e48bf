"""A gateway that may send webhooks to 127.0.0.1, a receiver there, and jobs run by the test."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from config import Settings
from gateway import create_app
from models import Job, Supplier, WebhookEndpoint
from services.core.database import Database
from services.core.jobs import READY
from services.core.secret_box import SecretBox
from services.core.worker import Worker
from services.fulfilment.supplier_registry import seal_secret
from suppliers.base import Outcome
from tests.fulfilment.conftest import Fulfilling, _sku_id
from tests.fulfilment.fakes import FakeSupplier
from tests.graphql.conftest import Keys, demo, keys  # noqa: F401 - fixtures shared with the GraphQL tests
from services.webhooks.audience import AUDIENCES
from tests.support import GraphQLClient
from tests.webhooks.receiver import Receiver, running_receiver

CREATE = """
mutation Create($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id url events secret channel } userErrors { field code message } }
}
"""
UPDATE = """
mutation Update($input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(input: $input) { endpoint { id enabled events } userErrors { field code } }
}
"""
DELIVERIES = """
query Deliveries($endpoint: ID, $first: Int, $after: String) {
  webhookDeliveries(endpointId: $endpoint, first: $first, after: $after) {
    edges { cursor node { id eventType messageId status attemptCount payload attempts { statusCode error response } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@dataclass
class Hooks(Fulfilling):
    webhook_worker: Worker | None = None

    async def send_all(self, rounds: int = 40) -> None:
        """Run every job, fulfilment and webhooks, until none is left, each retry made due at once."""
        assert self.webhook_worker is not None
        for _ in range(rounds):
            await self.make_due()
            ran = await self.worker.run_once() + await self.webhook_worker.run_once()
            if not ran:
                return

    async def make_due(self) -> None:
        async with self.db.sessions() as session, session.begin():
            await session.execute(update(Job).where(Job.status == READY).values(run_after=datetime.now(UTC) - timedelta(seconds=1)))

    async def fulfil(self) -> None:
        """Run the fulfilment jobs only: webhook deliveries stay queued."""
        for _ in range(30):
            await self.make_due()
            if not await self.worker.run_once():
                return

    async def endpoint(self, url: str, events: list[str], *, key: str, channel: str | None = None) -> dict[str, Any]:
        answer = await self.gql(CREATE, {"input": {"url": url, "events": events, "channel": channel}}, key=key)
        payload = answer["data"]["createWebhookEndpoint"]
        assert payload["userErrors"] == [], payload
        return payload["endpoint"]

    async def disable(self, endpoint: dict[str, Any]) -> None:
        await self.gql(UPDATE, {"input": {"id": endpoint["id"], "enabled": False}}, key=self.keys.admin)

    def demo_sku(self, code: str) -> str:
        return _sku_id(self.demo, code)

    async def deliveries(self, endpoint: dict[str, Any], key: str | None = None) -> list[dict[str, Any]]:
        answer = await self.gql(DELIVERIES, {"endpoint": endpoint["id"], "first": 50}, key=key or self.keys.admin)
        return [edge["node"] for edge in answer["data"]["webhookDeliveries"]["edges"]]


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture(scope="session")
def dead_url() -> str:
    """A port on 127.0.0.1 nothing listens on: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/dead"


@pytest.fixture(scope="session")
async def hooks(settings: Settings, db: Database, keys: Keys, demo: Any) -> AsyncIterator[Hooks]:  # noqa: F811
    fakes = {"sim-fast": FakeSupplier("sim-fast"), "sim-backup": FakeSupplier("sim-backup")}
    box = SecretBox(settings.secret_key)
    async with db.sessions() as session, session.begin():
        for code in fakes:
            await session.execute(update(Supplier).where(Supplier.code == code).values(
                adapter="fake", secret_ciphertext=seal_secret(box, code, "fake-secret"), timeout_seconds=1.0))
    for fake in fakes.values():
        fake.reset(default=Outcome.SUCCEEDED)
    app = create_app(replace(settings, worker=False, webhook_allow_private=True),
                     supplier_adapters={"fake": lambda row, secret: fakes[row.code]})
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as http:
            yield Hooks(GraphQLClient(http), http, app.state.worker, db, keys, fakes, demo, app.state.broker, app,
                        webhook_worker=app.state.webhook_worker)


async def _quiet(hooks: Hooks) -> None:
    async with hooks.db.sessions() as session, session.begin():
        await session.execute(update(WebhookEndpoint).values(enabled=False))
    AUDIENCES.forget()
    await hooks.send_all()


@pytest.fixture
async def clean(hooks: Hooks) -> AsyncIterator[Hooks]:
    """No endpoint of another test listens, and nothing is left to send, before or after."""
    await _quiet(hooks)
    yield hooks
    await _quiet(hooks)
