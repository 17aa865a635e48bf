"""Shared fixtures: one fresh database per test run, migrated and loaded with demo data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from config import Settings
from gateway import create_app
from services.core.database import Database
from services.core.migrate import upgrade
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from tests.support import (
    TEST_REDIS_URL,
    GraphQLClient,
    StatementCounter,
    fresh_database,
    new_secret_key,
    require_redis,
)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from fresh_database(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    if TEST_REDIS_URL:
        asyncio.run(require_redis(TEST_REDIS_URL))
    upgrade(database_url)
    # Each run gets its own broker topics, so runs sharing one Redis never hear each other.
    # The response cache is off here (tests change rows directly); its own tests turn it on.
    return Settings(
        database_url=database_url,
        redis_url=TEST_REDIS_URL,
        secret_key=new_secret_key(),
        response_cache=False,
        # Budgets would throttle a suite that sends thousands of requests from one address;
        # the admission tests build apps with them on.
        rate_limits=False,
        # So would the default hold caps: the suite's guests share one phone and address and
        # leave orders unpaid. Tests of holds set caps of their own (tests/graphql/test_hold_limits.py).
        hold_limit=0,
        hold_limit_per_ip=0,
        # The expiry sweep's own statements would muddle statement counts; order tests
        # that need expiry build an app with a short interval.
        expiry_interval_seconds=3600,
        broker_prefix=f"quanyi-test-{uuid.uuid4().hex[:8]}:",
    )


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.connect(settings)
    await seed_demo(database, SecretBox(settings.secret_key))
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def app(settings: Settings, db: Database) -> AsyncIterator[object]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture(scope="session")
def statements(app: object) -> StatementCounter:
    counter = StatementCounter()
    database = app.state.db  # type: ignore[attr-defined]
    counter.attach(database.engine)
    if database.read_engine is not database.engine:
        counter.attach(database.read_engine)
    if database.driver is not None:
        counter.attach_driver(database.driver)
    return counter


@pytest.fixture
async def http(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
        yield client


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("work")
