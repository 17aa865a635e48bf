"""A membership renews on its calendar through the agreement, each period an ordinary order
delivered with its own ledger entries, and stops when cancelled."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from models import InboxMessage, LedgerEntry, Order
from schema.relay import encode_id
from tests.memberships.conftest import Subscribing


async def _postings(subs: Subscribing, number: str) -> list[tuple[str, str, int]]:
    async with subs.db.fresh_sessions() as session:
        rows = await session.execute(
            select(LedgerEntry.kind, LedgerEntry.account, LedgerEntry.amount_fen)
            .join(Order, Order.id == LedgerEntry.order_id).where(Order.number == number).order_by(LedgerEntry.id)
        )
        return [(kind.name, account.name, amount) for kind, account, amount in rows]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_a_membership_renews_three_times_on_its_calendar_and_stops_after_cancellation(subs: Subscribing) -> None:
    subscribed = await subs.subscribe()
    assert subscribed["userErrors"] == []
    membership, token = subscribed["subscription"], subscribed["accessToken"]
    assert (membership["status"], membership["paidPeriods"], subscribed["order"]["status"]) == ("ACTIVE", 1, "PAID")
    await subs.run_jobs()

    for _ in range(3):
        await subs.live_to_next_renewal(membership)

    seen = await subs.read(membership, key=token)
    assert seen is not None
    assert (seen["status"], seen["paidPeriods"]) == ("ACTIVE", 4)
    assert [(o["period"], o["status"]) for o in seen["orders"]] == [
        (1, "DELIVERED"), (2, "DELIVERED"), (3, "DELIVERED"), (4, "DELIVERED")]
    assert len({o["number"] for o in seen["orders"]}) == 4
    assert [e["kind"] for e in seen["events"]] == [
        "SIGNED", "CHARGED", "REMINDED", "CHARGED", "REMINDED", "CHARGED", "REMINDED", "CHARGED"]
    # Each renewal is an ordinary order: delivered and settled on its own.
    for order in seen["orders"]:
        gross = int(order["total"]["amount"].replace(".", ""))
        postings = await _postings(subs, order["number"])
        assert [(kind, account) for kind, account, _ in postings] == [
            ("DELIVERY", "CHANNEL"), ("DELIVERY", "SUPPLIER"), ("DELIVERY", "COMMISSION"), ("DELIVERY", "MARGIN")]
        assert postings[0][2] == gross and sum(amount for _, _, amount in postings) == 0
    assert len(subs.provider.charged(seen["number"])) == 4

    cancelled = await subs.cancel(membership, token)
    assert cancelled == {"subscription": {"status": "CANCELLED", "paidPeriods": 4, "endedAt": cancelled[
        "subscription"]["endedAt"]}, "userErrors": []}
    subs.clock.move_to(seen["nextRenewalAt"])
    subs.clock.advance(days=70)
    await subs.run_jobs()

    after = await subs.read(membership, key=token)
    assert after is not None
    assert (after["status"], after["paidPeriods"], len(after["orders"])) == ("CANCELLED", 4, 4)
    assert after["nextRenewalAt"] is None
    assert _at(after["currentPeriodEnd"]) > _at(after["endedAt"])  # the period paid for stays
    assert len(subs.provider.charged(seen["number"])) == 4


async def test_the_buyer_is_reminded_before_the_renewal_is_charged(subs: Subscribing) -> None:
    membership = (await subs.subscribe())["subscription"]
    await subs.run_jobs()
    due = _at(membership["nextRenewalAt"])
    subs.clock.move_to(due - timedelta(days=3))
    await subs.run_jobs()

    seen = await subs.read(membership)
    assert seen is not None
    assert [e["kind"] for e in seen["events"]] == ["SIGNED", "CHARGED", "REMINDED"]
    assert seen["paidPeriods"] == 1 and len(subs.provider.charged(seen["number"])) == 1
    first = seen["orders"][0]["number"]
    async with subs.db.fresh_sessions() as session:
        subjects = list(await session.scalars(
            select(InboxMessage.subject).join(Order, Order.id == InboxMessage.order_id).where(Order.number == first)))
    assert f"Membership {seen['number']} renews on {due:%Y-%m-%d}" in subjects


SET_PRICE = "mutation S($input: SetChannelPriceInput!) { setChannelPrice(input: $input) { userErrors { code } } }"


async def test_a_renewal_is_charged_at_the_channels_price_of_the_day(subs: Subscribing) -> None:
    subscribed = await subs.subscribe(channel="h5")
    membership = subscribed["subscription"]
    await subs.run_jobs()
    changed = await subs.gql(SET_PRICE, {"input": {"channel": "h5", "skuId": encode_id("Sku", subs.demo.skus["NCM-MONTH"]),
                                                   "amount": "13.90"}}, key=subs.keys.admin)
    assert changed["data"]["setChannelPrice"]["userErrors"] == []

    renewed = await subs.live_to_next_renewal(membership)
    assert [(o["period"], o["total"]["amount"]) for o in renewed["orders"]] == [
        (1, subscribed["order"]["total"]["amount"]), (2, "13.90")]
    assert [c.amount_fen for c in subs.provider.charged(renewed["number"])][-1] == 1390
