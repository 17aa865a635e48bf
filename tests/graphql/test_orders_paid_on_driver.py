"""payOrder on PostgreSQL's driver (services/payments/pay_pg.py) answers and writes exactly
what the general path does: the same payload, the same order row, event and FULFIL job; a
payment reported again changes nothing; one the order cannot take is owed back, with its
ledger entries; concurrent payments pay once. On SQLite both payments take the general path,
so the comparisons hold there trivially and the rest the same."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from domain.orders import OrderStatus
from models import Job, LedgerEntry, Order, OrderEvent, Refund
from schema.relay import decode_pk
from services.payments import pay_pg
from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number } accessToken userErrors { code } }
}
"""
PAY = """
mutation Pay($id: ID!, $reference: String!) {
  payOrder(orderId: $id, paymentReference: $reference) {
    order { status paymentReference channel total { amount currency } buyer { phone rechargeAccount }
            lines { quantity outcome } refunds { amount { amount } status reference } }
    userErrors { field code message }
  }
}
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("orders-paid-on-driver")) as opened:
        yield opened


@pytest.fixture
def driver_payments(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The orders the driver's statement paid (empty on SQLite, where it never runs)."""
    paid: list[int] = []
    original = pay_pg.pay

    async def recording(driver: Any, order_id: int, *args: Any, **kwargs: Any) -> Any:
        answer = await original(driver, order_id, *args, **kwargs)
        if answer is not None:
            paid.append(order_id)
        return answer

    monkeypatch.setattr(pay_pg, "pay", recording)
    return paid


@pytest.fixture
def general_path(monkeypatch: pytest.MonkeyPatch) -> Callable[[], Any]:
    """Turns the driver's payment off for the rest of the test: every payment goes the general path."""

    def off() -> None:
        async def never(*_: Any) -> bool:
            return False

        monkeypatch.setattr(pay_pg, "handles", never)

    return off


def on_postgres(shop: Shop) -> bool:
    return shop.db.engine.dialect.name == "postgresql"


async def place(shop: Shop, sku: StockedSku, *, channel: str = "web", key: str | None = None) -> dict[str, Any]:
    buyer = {"phone": "13800138000", "rechargeAccount": "qq:10001"}
    answer = await shop.gql(PLACE, {"input": order_input((sku, 1), channel=channel, buyer=buyer)}, key=key)
    payload = answer["data"]["placeOrder"]
    assert payload["userErrors"] == []
    return {"id": payload["order"]["id"], "number": payload["order"]["number"], "pk": decode_pk(payload["order"]["id"], "Order")}


async def pay(shop: Shop, order: dict[str, Any], reference: str, key: str | None = None) -> dict[str, Any]:
    answer = await shop.gql(PAY, {"id": order["id"], "reference": reference}, key=key or shop.keys.admin)
    return answer["data"]["payOrder"]


async def rows(shop: Shop, order: dict[str, Any]) -> dict[str, Any]:
    """What the payment wrote, without ids, numbers and clocks (paid_at is compared with the
    event's and the job's time instead)."""
    pk = order["pk"]
    async with shop.db.sessions() as session:
        row = await session.get_one(Order, pk)
        events = (await session.execute(
            select(OrderEvent.actor, OrderEvent.from_status, OrderEvent.to_status, OrderEvent.reason, OrderEvent.at)
            .where(OrderEvent.order_id == pk).order_by(OrderEvent.id))).all()
        jobs = (await session.execute(select(Job.kind, Job.key, Job.payload, Job.created_at).where(Job.order_id == pk))).all()
        refunds = (await session.execute(
            select(Refund.key, Refund.amount_fen, Refund.reason, Refund.reference, Refund.status)
            .where(Refund.order_id == pk).order_by(Refund.id))).all()
        entries = (await session.execute(
            select(LedgerEntry.kind, LedgerEntry.account, LedgerEntry.amount_fen, LedgerEntry.currency)
            .where(LedgerEntry.order_id == pk).order_by(LedgerEntry.id))).all()
    paid = [e for e in events if e.to_status is OrderStatus.PAID]
    return {
        "payment_reference": row.payment_reference, "expires_at": row.expires_at, "paid": row.paid_at is not None,
        "paid_events": [(e.actor, e.from_status, e.to_status, e.reason, e.at == row.paid_at) for e in paid],
        "jobs": [(kind, _ids(key), _ids(payload), created_at == row.paid_at) for kind, key, payload, created_at in jobs],
        "refunds": [(_ids(key), amount, reason, reference, status) for key, amount, reason, reference, status in refunds],
        "entries": [tuple(entry) for entry in entries],
    }


def _ids(text: str) -> str:
    """Ids (of the order, of a refund) left out of a job's key or payload."""
    return re.sub(r"(?<![A-Z-])\d+", "#", text)


async def twice(
    shop: Shop, general_path: Callable[[], Any], act: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    sku: StockedSku,
) -> tuple[tuple[dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]:
    """The same act on two orders of `sku`: the first on the driver (PostgreSQL), the second
    on the general path; each its answer and its rows."""
    first, second = await place(shop, sku), await place(shop, sku)
    on_driver = await act(first)
    general_path()
    on_general = await act(second)
    return (on_driver, await rows(shop, first)), (on_general, await rows(shop, second))


async def test_a_payment_that_pays_answers_and_writes_as_the_general_path(
    shop: Shop, driver_payments: list[int], general_path: Callable[[], Any]
) -> None:
    video = await shop.shelf.counter(10)

    (driver_answer, driver_rows), (general_answer, general_rows) = await twice(
        shop, general_path, lambda order: pay(shop, order, "  WX-PAID-1 "), video)

    assert driver_answer == general_answer
    assert driver_answer["userErrors"] == [] and driver_answer["order"]["status"] == "PAID"
    assert driver_answer["order"]["paymentReference"] == "WX-PAID-1"
    assert driver_rows == general_rows
    actor, _, _, reason, at_payment = driver_rows["paid_events"][0]
    assert (actor, reason, at_payment) == (f"admin:{shop.keys.prefix(shop.keys.admin)}", "payment WX-PAID-1", True)
    assert [job[:3] for job in driver_rows["jobs"]] == [("fulfil", "fulfil:#", "{}")]
    assert driver_rows["jobs"][0][3] and driver_rows["expires_at"] is None and driver_rows["refunds"] == []
    assert len(driver_payments) == (1 if on_postgres(shop) else 0)


async def test_the_same_payment_reported_again_changes_nothing(
    shop: Shop, driver_payments: list[int], general_path: Callable[[], Any]
) -> None:
    video = await shop.shelf.counter(10)

    async def paid_twice(order: dict[str, Any]) -> dict[str, Any]:
        first = await pay(shop, order, "WX-AGAIN")
        again = await pay(shop, order, "WX-AGAIN")
        assert again == first
        return again

    (driver_answer, driver_rows), (general_answer, general_rows) = await twice(shop, general_path, paid_twice, video)

    assert driver_answer == general_answer and driver_answer["userErrors"] == []
    assert driver_rows == general_rows
    assert len(driver_rows["paid_events"]) == 1 and len(driver_rows["jobs"]) == 1
    assert len(driver_payments) == (1 if on_postgres(shop) else 0)


async def test_another_payment_of_a_paid_order_is_owed_back_with_its_ledger_entries(
    shop: Shop, driver_payments: list[int], general_path: Callable[[], Any]
) -> None:
    video = await shop.shelf.counter(10, price_fen=1990)

    async def paid_then_other(order: dict[str, Any]) -> dict[str, Any]:
        await pay(shop, order, "WX-FIRST")
        return await pay(shop, order, "WX-SECOND")

    (driver_answer, driver_rows), (general_answer, general_rows) = await twice(shop, general_path, paid_then_other, video)

    assert driver_answer == general_answer
    assert [error["code"] for error in driver_answer["userErrors"]] == ["REFUND_REQUESTED"]
    assert driver_rows == general_rows
    assert [(r[1], r[3], r[4]) for r in driver_rows["refunds"]] == [(1990, "WX-SECOND", "REQUESTED")]
    assert driver_rows["entries"] and sum(entry[2] for entry in driver_rows["entries"]) == 0
    assert driver_rows["payment_reference"] == "WX-FIRST" and len(driver_rows["paid_events"]) == 1


async def test_a_payment_owed_back_before_stays_owed_back_when_the_order_could_take_it(
    shop: Shop, driver_payments: list[int]
) -> None:
    video = await shop.shelf.counter(10)
    order = await place(shop, video)
    async with shop.db.sessions() as session:  # held for review when the payment came
        await session.execute(update(Order).where(Order.id == order["pk"]).values(status=OrderStatus.REVIEW))
        await session.commit()
    owed = await pay(shop, order, "WX-EARLY")
    async with shop.db.sessions() as session:  # approved since
        await session.execute(update(Order).where(Order.id == order["pk"]).values(status=OrderStatus.PENDING_PAYMENT))
        await session.commit()

    again = await pay(shop, order, "WX-EARLY")

    assert [e["code"] for e in owed["userErrors"]] == [e["code"] for e in again["userErrors"]] == ["REFUND_REQUESTED"]
    assert again["order"]["status"] == "PENDING_PAYMENT"
    assert len((await rows(shop, order))["refunds"]) == 1 and driver_payments == []


async def test_an_expired_order_is_not_paid(
    shop: Shop, driver_payments: list[int], general_path: Callable[[], Any]
) -> None:
    video = await shop.shelf.counter(10)

    async def expired(order: dict[str, Any]) -> dict[str, Any]:
        async with shop.db.sessions() as session:
            past = datetime.now(UTC) - timedelta(seconds=1)
            await session.execute(update(Order).where(Order.id == order["pk"]).values(expires_at=past))
            await session.commit()
        return await pay(shop, order, "WX-LATE")

    (driver_answer, driver_rows), (general_answer, general_rows) = await twice(shop, general_path, expired, video)

    assert driver_answer == general_answer
    assert driver_answer["order"]["status"] == "EXPIRED"
    assert [e["code"] for e in driver_answer["userErrors"]] == ["REFUND_REQUESTED"]
    assert driver_rows == general_rows and driver_payments == []
    assert [job[0] for job in driver_rows["jobs"]] == ["refund"]


async def test_a_partner_pays_its_own_channels_orders_only(shop: Shop, driver_payments: list[int]) -> None:
    video = await shop.shelf.counter(10)
    theirs = await place(shop, video, channel="taobao", key=shop.keys.taobao)
    ours = await place(shop, video)

    refused = await pay(shop, ours, "TB-NOT-MINE", key=shop.keys.taobao)
    paid = await pay(shop, theirs, "TB-MINE", key=shop.keys.taobao)

    assert refused == {"order": None, "userErrors": [{"field": "orderId", "code": "NOT_FOUND", "message": "no such order"}]}
    assert (await rows(shop, ours))["paid_events"] == []
    assert paid["userErrors"] == [] and paid["order"]["status"] == "PAID" and paid["order"]["channel"] == "taobao"
    assert driver_payments == ([theirs["pk"]] if on_postgres(shop) else [])


async def test_concurrent_payments_pay_once_and_the_others_are_owed_back(
    shop: Shop, driver_payments: list[int]
) -> None:
    video = await shop.shelf.counter(10)
    order = await place(shop, video)

    answers = await asyncio.gather(*(pay(shop, order, f"WX-RACE-{n}") for n in range(6)))

    paid = [a for a in answers if not a["userErrors"]]
    owed = [a for a in answers if [e["code"] for e in a["userErrors"]] == ["REFUND_REQUESTED"]]
    assert len(paid) == 1 and len(owed) == 5
    written = await rows(shop, order)
    assert len(written["paid_events"]) == 1 and len(written["refunds"]) == 5
    assert [job[0] for job in written["jobs"]].count("fulfil") == 1
    assert written["payment_reference"] == paid[0]["order"]["paymentReference"]
    assert len(driver_payments) <= 1
