"""A real gateway under a rush of buyers on a channel quota: never beyond it, bundles
included, cancellations racing new orders give back exactly what was taken, and under a
quota lowered below what is used they open no room until used falls under it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from models import ChannelQuota, OrderLine, QuotaUse
from schema.relay import decode_pk
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


async def slot_of(rush: Rush, order: dict[str, Any]) -> int:
    """The quota slot a one-unit order took its unit from."""
    async with rush.db.sessions() as session:
        [slot] = await session.scalars(
            select(ChannelQuota.slot).join(QuotaUse, QuotaUse.quota_id == ChannelQuota.id)
            .join(OrderLine, OrderLine.id == QuotaUse.line_id)
            .where(OrderLine.order_id == decode_pk(order["order"]["id"], "Order"))
        )
        return slot


async def test_cancellations_racing_buyers_under_a_lowered_quota_never_end_beyond_it(rush: Rush) -> None:
    coins = await rush.shelf.card_codes(200)
    await rush.shelf.set_quota("web", coins, 16)  # 2 in each of 8 slots
    async with asyncio.timeout(BUDGET_SECONDS), rush.client() as http:
        held = [await place(http, order_input((coins, 1), key=f"held-order-key-{n}")) for n in range(16)]
        await rush.shelf.set_quota("web", coins, 6)  # the shares of slots 0-5 are 1, of 6 and 7 none
        slots = [await slot_of(rush, order) for order in held]
        ending = [order for order, slot in zip(held, slots, strict=True) if slot < 6]  # 12 orders, 12 units

        async def cancel(order: dict[str, Any]) -> dict[str, Any]:
            return await gql(http, CANCEL, {"id": order["order"]["id"]}, key=order["accessToken"])

        answers = await asyncio.gather(
            *(cancel(order) for order in ending),
            *(place(http, order_input((coins, 1), key=f"lowered-racing-key-{n}")) for n in range(60)),
        )
        after = [await place(http, order_input((coins, 1), key=f"lowered-after-key-{n}")) for n in range(5)]

    # The 4 units of slots 6 and 7 stay used: the quota of 6 has room for 2 more, no more.
    assert sorted(slots) == [slot for slot in range(8) for _ in range(2)]
    assert all(a["data"]["cancelOrder"]["userErrors"] == [] for a in answers[:12])
    assert Counter(outcome(a) for a in answers[12:] + after)["PLACED"] == 2
    assert await quota_used(rush, coins.pk) == 6
    assert await rush.ledger.codes(coins) == {"AVAILABLE": 194, "RESERVED": 6}
    rush.assert_clean_log()
