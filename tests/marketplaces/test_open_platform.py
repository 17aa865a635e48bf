"""The open-platform adapter against the simulated marketplace: signatures, paging,
duplicates, failures, and a delivery the marketplace keeps once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from marketplaces import signing
from marketplaces.base import DeliveredCode, MarketplaceRefused, MarketplaceUnavailable, Shipment, TopUpResult
from marketplaces.http import OpenPlatformAdapter
from marketplaces.simulator import create_marketplace

KEY, SECRET = "12345678", "sim-app-secret"


@pytest.fixture
async def market() -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    app = create_marketplace(KEY, SECRET, seed=7)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://market.test") as client:
            yield client, app


def _adapter(client: httpx.AsyncClient, secret: str = SECRET) -> OpenPlatformAdapter:
    return OpenPlatformAdapter("http://market.test", KEY, secret, client=client)


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(seconds=2)


async def _sell(client: httpx.AsyncClient, outer_id: str = "QB-10", quantity: int = 1) -> str:
    answer = await client.post("/control/trades", json={"outer_id": outer_id, "quantity": quantity, "price": "9.90"})
    return str(answer.json()["trade"]["tid"])


async def test_pages_of_paid_trades_come_in_order(market) -> None:
    client, _ = market
    tids = [await _sell(client, f"QB-{n}") for n in range(5)]
    start, end = _window()
    first = await _adapter(client).trades_since(start, end, 1, 3)
    second = await _adapter(client).trades_since(start, end, 2, 3)
    assert [t.tid for t in first.trades] + [t.tid for t in second.trades] == tids
    assert (first.has_next, second.has_next) == (True, False)
    assert first.trades[0].lines[0].outer_id == "QB-0"


async def test_a_wrong_secret_is_refused_by_the_marketplace(market) -> None:
    client, _ = market
    with pytest.raises(MarketplaceRefused) as refused:
        await _adapter(client, "not-the-secret").trades_since(*_window(), 1, 10)
    assert refused.value.code == "isv.invalid-signature"
    assert "not-the-secret" not in str(refused.value)


async def test_duplicates_are_injected_into_pages(market) -> None:
    client, app = market
    await client.post("/control", json={"duplicate_rate": 1.0})
    tid = await _sell(client)
    page = await _adapter(client).trades_since(*_window(), 1, 10)
    assert [t.tid for t in page.trades] == [tid, tid]


async def test_failures_are_unavailable_then_the_pull_works(market) -> None:
    client, _ = market
    await client.post("/control", json={"fail_pulls": 1})
    await _sell(client)
    with pytest.raises(MarketplaceUnavailable):
        await _adapter(client).trades_since(*_window(), 1, 10)
    assert len((await _adapter(client).trades_since(*_window(), 1, 10)).trades) == 1


async def test_a_timeout_is_unavailable(market) -> None:
    client, _ = market
    await client.post("/control", json={"fail_pulls": 1, "failure": "timeout", "hang_ms": 500})
    adapter = OpenPlatformAdapter("http://market.test", KEY, SECRET, client=client, timeout_seconds=0.1)
    with pytest.raises(MarketplaceUnavailable):  # in-process the hang ends in a 504; over a socket, the timeout
        await adapter.trades_since(*_window(), 1, 10)


async def test_a_trade_is_delivered_once_however_often_it_is_reported(market) -> None:
    client, _ = market
    tid = await _sell(client)
    shipment = Shipment(tid, codes=(DeliveredCode("NO-1", "CODE-SECRET-1"),))
    assert "CODE-SECRET-1" not in repr(shipment)
    first, again = await _adapter(client).ship(shipment), await _adapter(client).ship(shipment)
    assert (first.ok, first.already, again.ok, again.already) == (True, False, True, True)
    assert (await client.get("/control/deliveries")).json() == [
        {"tid": tid, "requests": 2, "codes": ["*********ET-1"], "topups": []}
    ]


async def test_a_bundle_of_codes_and_top_ups_is_one_mixed_delivery(market) -> None:
    client, _ = market
    tid = await _sell(client, "PACK-GAMER")
    shipment = Shipment(tid, codes=(DeliveredCode(None, "PACK-CODE-1"),), topups=(TopUpResult("13800138000", "SUP-1"),))
    assert (await _adapter(client).ship(shipment)).ok
    assert (await client.get("/control/deliveries")).json() == [
        {"tid": tid, "requests": 1, "codes": ["*******DE-1"], "topups": [{"account": "*******8000", "reference": "SUP-1"}]}
    ]


def test_a_stale_or_forged_push_is_refused() -> None:
    adapter = OpenPlatformAdapter("http://market.test", KEY, SECRET)
    now = datetime.now(UTC)
    fresh = signing.signed(SECRET, {"app_key": KEY, "timestamp": signing.timestamp(now), "topic": "t", "content": "{}"})
    adapter.verify_push(fresh, now)
    stale = signing.signed(SECRET, {**fresh, "timestamp": signing.timestamp(now - timedelta(minutes=11))})
    forged = {**fresh, "content": '{"tid": "1"}'}
    other_key = signing.signed(SECRET, {**fresh, "app_key": "someone-else"})
    for params, reason in ((stale, "tolerance"), (forged, "does not match"), (other_key, "app_key")):
        with pytest.raises(Exception, match=reason):
            adapter.verify_push(params, now)
