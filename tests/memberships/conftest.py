"""A gateway whose memberships run on a clock the test moves and a simulated recurring
payment provider; jobs are run by the test, at the clock's time; suppliers are fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import update

from broker import Broker
from config import Settings
from domain.memberships import REMINDER_LEAD
from gateway import create_app
from models import Supplier
from providers.recurring_sim import RecurringSim
from schema.relay import decode_pk, encode_id
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.core import jobs
from services.core.worker import JobRun, Worker
from services.memberships import schedule
from services.fulfilment.supplier_registry import seal_secret
from services.memberships.desk import Memberships
from services.memberships.renewals import Renewals
from suppliers.base import Outcome
from tests.fulfilment.fakes import FakeSupplier
from tests.graphql.conftest import Keys, demo, keys  # noqa: F401 - fixtures shared with the GraphQL tests
from tests.support import GraphQLClient

SUBSCRIBE = """
mutation S($input: SubscribeInput!) {
  subscribe(input: $input) {
    subscription { id number status paidPeriods nextRenewalAt }
    order { id number status total { amount } }
    accessToken orderAccessToken
    userErrors { field code message }
  }
}
"""
MEMBERSHIP = """
query M($id: ID!) {
  subscription(id: $id) {
    number status paidPeriods currentPeriodEnd nextRenewalAt endedAt
    orders { period number status total { amount } }
    events { kind period orderNumber detail }
  }
}
"""
CANCEL = """
mutation C($id: ID!) {
  cancelSubscription(id: $id) { subscription { status paidPeriods endedAt } userErrors { field code } }
}
"""


@dataclass
class ManualClock:
    """A clock that stands still until the test moves it."""

    at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.at

    def move_to(self, at: datetime | str) -> None:
        moment = datetime.fromisoformat(at) if isinstance(at, str) else at
        assert moment >= self.at, "time runs forward"
        self.at = moment

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Subscribing:
    gql: GraphQLClient
    db: Database
    keys: Keys
    demo: Any
    clock: ManualClock
    provider: RecurringSim
    worker: Worker
    renewals: Renewals
    suppliers: dict[str, FakeSupplier]
    broker: Broker
    counter: list[int] = field(default_factory=lambda: [0])

    async def subscribe(self, sku: str = "NCM-MONTH", *, channel: str = "web", key: str | None = None,
                        phone: str = "13800138000", account: str = "13800138000", **extra: Any) -> dict[str, Any]:
        self.counter[0] += 1
        answer = await self.gql(SUBSCRIBE, {"input": {
            "channel": channel, "skuId": encode_id("Sku", self.demo.skus[sku]),
            "idempotencyKey": f"membership-test-{self.counter[0]}-{self.clock().timestamp()}",
            "buyer": {"phone": phone, "rechargeAccount": account}, **extra,
        }}, key=key)
        return answer["data"]["subscribe"]

    async def read(self, membership: dict[str, Any], key: str | None = None) -> dict[str, Any] | None:
        answer = await self.gql(MEMBERSHIP, {"id": membership["id"]}, key=key or self.keys.admin)
        return answer["data"]["subscription"]

    async def cancel(self, membership: dict[str, Any], key: str) -> dict[str, Any]:
        return (await self.gql(CANCEL, {"id": membership["id"]}, key=key))["data"]["cancelSubscription"]

    async def live_to_next_renewal(self, membership: dict[str, Any]) -> dict[str, Any]:
        """Move the clock to the reminder of the next renewal, run what is due, then to the
        renewal itself and run what is due; the membership as it is then."""
        seen = await self.read(membership)
        assert seen is not None and seen["nextRenewalAt"] is not None
        due = datetime.fromisoformat(seen["nextRenewalAt"])
        self.clock.move_to(max(due - REMINDER_LEAD, self.clock()))
        await self.run_jobs()
        self.clock.move_to(due)
        await self.run_jobs()
        after = await self.read(membership)
        assert after is not None
        return after

    async def claim_renewal(self, membership: dict[str, Any]) -> jobs.Claimed:
        """Move the clock to the membership's next renewal and lease its job, to run by hand."""
        seen = await self.read(membership)
        assert seen is not None
        self.clock.move_to(seen["nextRenewalAt"])
        async with self.db.sessions() as session, session.begin():
            claimed = await jobs.claim(session, worker="test", now=self.clock(), lease_seconds=60, limit=100,
                                       kinds=[schedule.RENEW])
        mine = [job for job in claimed if job.key == schedule.renew_key(decode_pk(membership["id"], "Membership"),
                                                                         seen["paidPeriods"] + 1)]
        assert len(mine) == 1
        async with self.db.sessions() as session, session.begin():
            for job in claimed:
                if job is not mine[0]:
                    await jobs.release(session, job, worker="test", now=self.clock())
        return mine[0]

    def run_of(self, job: jobs.Claimed, worker: str) -> JobRun:
        return JobRun(job, worker, self.db, self.broker)

    async def run_jobs(self) -> int:
        """Run every job due at the clock's time, and what they make due, to the end."""
        ran = 0
        for _ in range(40):
            done = await self.worker.run_once(now=self.clock())
            if not done:
                return ran
            ran += done
        raise AssertionError("jobs kept coming")


@pytest.fixture(scope="session")
async def subscribing(
    settings: Settings, db: Database, keys: Keys, demo: Any  # noqa: F811 - the shared fixtures
) -> AsyncIterator[Subscribing]:
    fakes = {"sim-fast": FakeSupplier("sim-fast"), "sim-backup": FakeSupplier("sim-backup")}
    box = SecretBox(settings.secret_key)
    async with db.sessions() as session, session.begin():
        for code in fakes:
            await session.execute(update(Supplier).where(Supplier.code == code).values(
                adapter="fake", secret_ciphertext=seal_secret(box, code, "fake-secret"), timeout_seconds=1.0))
    clock, provider = ManualClock(), RecurringSim(b"k" * 32)
    app = create_app(replace(settings, worker=False), supplier_adapters={"fake": lambda row, secret: fakes[row.code]},
                     memberships=Memberships(provider, clock))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as http:
            yield Subscribing(GraphQLClient(http), db, keys, demo, clock, provider, app.state.worker,
                              app.state.renewals, fakes, app.state.broker)


@pytest.fixture
def subs(subscribing: Subscribing) -> Subscribing:
    subscribing.provider.declines.clear()
    for fake in subscribing.suppliers.values():
        fake.reset(default=Outcome.SUCCEEDED)
    return subscribing
