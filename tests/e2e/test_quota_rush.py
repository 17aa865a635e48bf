"""A real gateway under a rush of buyers on a channel quota: never beyond it, bundles
included, and cancellations racing new orders give back exactly what was taken."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from models import ChannelQuota
from tests.e2e.shop import order_input
from tests.e2e.test_order_rush import BUDGET_SECONDS, CANCEL, Rush, gql, outcome, place, rush_on

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def rush(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rush]:
    async with rush_on(tmp_path_factory.mktemp("quota-rush")) as running:
        yield running


async def quota_used(rush: Rush, sku_pk: int) -> int:
    async with rush.db.sessions() as session:
        return int(await session.scalar(select(func.sum(ChannelQuota.used)).where(ChannelQuota.sku_id == sku_pk)) or 0)


async def test_300_buyers_of_a_sku_and_its_bundle_under_a_quota_of_30(rush: Rush) -> None:
    coins = await rush.shelf.card_codes(200)
    pack = await rush.shelf.bundle((coins, 1))
    await rush.shelf.set_quota("web", coins, 30)

    async with asyncio.timeout(BUDGET_SECONDS), rush.client() as http:
        answers = await asyncio.gather(*(
            place(http, order_input((pack if n % 2 else coins, 1), key=f"quota-rush-order-{n}")) for n in range(300)
        ))

    assert Counter(outcome(a) for a in answers) == {"PLACED": 30, "QUOTA_EXCEEDED": 270}
    assert await rush.ledger.codes(coins) == {"AVAILABLE": 170, "RESERVED": 30}
    assert await quota_used(rush, coins.pk) == 30
    rush.assert_clean_log()


async def test_cancellations_racing_new_orders_never_free_more_than_they_took(rush: Rush) -> None:
    coins = await rush.shelf.card_codes(200)
    pack = await rush.shelf.bundle((coins, 2))
    async with asyncio.timeout(BUDGET_SECONDS), rush.client() as http:
        # Placed before the quota existed: they took none of it, and give none back.
        early = [await place(http, order_input((coins, 1), key=f"early-order-key-{n}")) for n in range(10)]
        await rush.shelf.set_quota("web", coins, 20)
        under = [await place(http, order_input((pack, 1), key=f"under-order-key-{n}")) for n in range(10)]

        async def cancel(order: dict[str, Any]) -> dict[str, Any]:
            return await gql(http, CANCEL, {"id": order["order"]["id"]}, key=order["accessToken"])

        answers = await asyncio.gather(
            *(cancel(order) for order in early + under[:5]),
            *(place(http, order_input((coins, 1), key=f"racing-order-key-{n}")) for n in range(40)),
        )
        # However the race went, the quota has room for exactly what the 5 packs gave back.
        after = [await place(http, order_input((coins, 1), key=f"after-order-key-{n}")) for n in range(15)]

    racing = Counter(outcome(a) for a in answers[15:])
    assert all(a["data"]["cancelOrder"]["userErrors"] == [] for a in answers[:15])
    assert racing["PLACED"] + Counter(outcome(a) for a in after)["PLACED"] == 10
    assert await quota_used(rush, coins.pk) == 20
    assert await rush.ledger.codes(coins) == {"AVAILABLE": 180, "RESERVED": 20}
    rush.assert_clean_log()
