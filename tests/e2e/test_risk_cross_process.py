"""Two gateway processes sharing Redis: a rule added through one applies to the other's next
order, and the risk counters are one count across both: retries counted once, a velocity
rule exact however the orders are spread."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from domain.catalog import CodeStatus
from models import CardCode, Order
from services.core.database import Database
from tests.e2e.server import running_gateway, running_gateways
from tests.e2e.shop import migrated_database, order_input, shop_settings, stock_shop
from tests.e2e.test_cross_process import PLACE, _gql
from tests.support import TEST_REDIS_URL, require_redis

pytestmark = pytest.mark.e2e

BUDGET_SECONDS = 90
CREATE = """
mutation Create($input: CreateRiskRuleInput!) { createRiskRule(input: $input) { rule { id } userErrors { code } } }
"""


async def test_a_rule_added_through_one_gateway_stops_the_next_order_at_the_other(tmp_path: Path) -> None:
    if TEST_REDIS_URL is None:  # collected only when it is set (tests/e2e/conftest.py)
        pytest.fail("set QUANYI_TEST_REDIS_URL: the two gateways share rule changes through Redis")
    await require_redis(TEST_REDIS_URL)
    async with asyncio.timeout(BUDGET_SECONDS), migrated_database(tmp_path) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            coins = await shelf.card_codes(10)
            env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix}
            async with (
                running_gateway(url, settings.secret_key, tmp_path / "a.log", env=env) as a,
                running_gateway(url, settings.secret_key, tmp_path / "b.log", env=env) as b,
            ):
                # B reads the rules once and keeps them (for up to 30 s without a change).
                before = await _gql(b, PLACE, {"input": order_input((coins, 1))})
                rule = {"name": "no more on web", "kind": "QUANTITY_LIMIT", "action": "REJECT",
                        "parameters": {"max": 1}, "channel": "web"}
                created = await _gql(a, CREATE, {"input": rule}, keys.admin)
                # The change reaches B through Redis while A answers; a few tries absorb the
                # delivery's race with this request, well inside B's 30 s time-to-live.
                for _ in range(20):
                    after = await _gql(b, PLACE, {"input": order_input((coins, 2))})
                    if after["data"]["placeOrder"]["order"] is None:
                        break
                    await asyncio.sleep(0.1)

                assert before["data"]["placeOrder"] == {"order": {"number": before["data"]["placeOrder"]["order"]["number"],
                                                                   "status": "PENDING_PAYMENT"}, "userErrors": []}
                assert created["data"]["createRiskRule"]["userErrors"] == []
                assert after["data"]["placeOrder"] == {"order": None, "userErrors": [{"code": "RISK_REJECTED"}]}
                for server in (a, b):
                    assert "Traceback" not in server.output(), server.output()[-4000:]
        finally:
            await db.dispose()


async def test_retries_of_one_key_through_two_gateways_are_one_order_counted_once(tmp_path: Path) -> None:
    if TEST_REDIS_URL is None:  # collected only when it is set (tests/e2e/conftest.py)
        pytest.fail("set QUANYI_TEST_REDIS_URL: the two gateways share risk counters through Redis")
    await require_redis(TEST_REDIS_URL)
    async with asyncio.timeout(BUDGET_SECONDS), migrated_database(tmp_path) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            coins = await shelf.card_codes(20)
            env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix}
            async with (
                running_gateway(url, settings.secret_key, tmp_path / "a.log", env=env) as a,
                running_gateway(url, settings.secret_key, tmp_path / "b.log", env=env) as b,
            ):
                rule = {"name": "3 an hour per phone", "kind": "VELOCITY", "action": "REJECT",
                        "parameters": {"dimension": "PHONE", "limit": 3, "windowSeconds": 3600}}
                created = await _gql(a, CREATE, {"input": rule}, keys.admin)
                buyer = {"phone": "15800001234"}
                given = order_input((coins, 1), buyer=buyer)

                # A buyer's app retries one order ten times at once; a balancer spreads the retries.
                retries = await asyncio.gather(*(_gql((a, b)[n % 2], PLACE, {"input": given}) for n in range(10)))
                # The phone has used one of its three: two more pass, through either gateway.
                later = [await _gql((b, a)[n % 2], PLACE, {"input": order_input((coins, 1), buyer=buyer)}) for n in range(3)]

                assert created["data"]["createRiskRule"]["userErrors"] == []
                placed = [answer["data"]["placeOrder"] for answer in retries]
                assert placed[0]["userErrors"] == [] and placed[0]["order"]["status"] == "PENDING_PAYMENT"
                assert [answer == placed[0] for answer in placed] == [True] * 10
                assert [a["data"]["placeOrder"]["order"]["status"] if a["data"]["placeOrder"]["order"]
                        else a["data"]["placeOrder"]["userErrors"][0]["code"] for a in later] == [
                    "PENDING_PAYMENT", "PENDING_PAYMENT", "RISK_REJECTED"]
                for server in (a, b):
                    assert "Traceback" not in server.output(), server.output()[-4000:]
        finally:
            await db.dispose()


async def test_a_velocity_rule_of_five_per_phone_holds_exactly_over_two_gateways_at_once(tmp_path: Path) -> None:
    if TEST_REDIS_URL is None:  # collected only when it is set (tests/e2e/conftest.py)
        pytest.fail("set QUANYI_TEST_REDIS_URL: the two gateways share risk counters through Redis")
    await require_redis(TEST_REDIS_URL)
    async with asyncio.timeout(BUDGET_SECONDS), migrated_database(tmp_path) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            coins = await shelf.card_codes(30)
            env = {"QUANYI_BROKER_PREFIX": settings.broker_prefix}
            logs = [tmp_path / "a.log", tmp_path / "b.log"]
            async with running_gateways(url, settings.secret_key, logs, env=env) as (a, b):
                # Given a rule of five orders an hour per phone, made before either gateway scored an order
                rule = {"name": "5 an hour per phone", "kind": "VELOCITY", "action": "REJECT",
                        "parameters": {"dimension": "PHONE", "limit": 5, "windowSeconds": 3600}}
                created = await _gql(a, CREATE, {"input": rule}, keys.admin)

                # When twenty orders of one buyer, the phone spelled four ways, arrive at once, each
                # sent to both gateways (a client that retries on the other one)
                spellings = ["15899990000", "+86 158 9999 0000", "0086-158-9999-0000", "8615899990000"]
                given = [order_input((coins, 1), key=f"velocity-rule-order-{n:04d}",
                                     buyer={"phone": spellings[n % 4]}) for n in range(20)]
                answers = await asyncio.gather(*(
                    _gql(server, PLACE, {"input": order}) for order in given for server in (a, b)))
                # and another buyer orders afterwards, through each gateway
                others = [await _gql(server, PLACE, {"input": order_input((coins, 1), buyer={"phone": "13912345678"})})
                          for server in (a, b)]

                # Then exactly five orders were placed; both tries of a key got the same answer
                assert created["data"]["createRiskRule"]["userErrors"] == []
                by_key = [(answers[2 * n]["data"]["placeOrder"], answers[2 * n + 1]["data"]["placeOrder"])
                          for n in range(20)]
                assert all(first == second for first, second in by_key), by_key
                outcomes = Counter(first["order"]["status"] if first["order"] else first["userErrors"][0]["code"]
                                   for first, _ in by_key)
                assert outcomes == {"PENDING_PAYMENT": 5, "RISK_REJECTED": 15}
                assert [o["data"]["placeOrder"]["order"]["status"] for o in others] == ["PENDING_PAYMENT"] * 2
                async with db.fresh_sessions() as session:
                    phones = Counter(await session.scalars(select(Order.buyer_phone)))
                    reserved = await session.scalar(select(func.count()).select_from(CardCode).where(
                        CardCode.sku_id == coins.pk, CardCode.status == CodeStatus.RESERVED))
                assert (phones, reserved) == (Counter({"15899990000": 5, "13912345678": 2}), 7)
                for server in (a, b):
                    assert "Traceback" not in server.output(), server.output()[-4000:]
        finally:
            await db.dispose()
