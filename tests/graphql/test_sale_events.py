"""Sale events (预约抢购): operators schedule a SKU's sale; before its start nobody buys and nothing
is reserved; with registration, only registered buyers buy from the start, within their limit;
registration takes each buyer once however the phone is spelled, and caps floods per address."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import case, update

from gateway import create_app
from models import SaleEvent
from schema.relay import decode_pk
from services.core.database import Database
from tests.e2e.shop import Ledger, Shop, StockedSku, migrated_database, order_input, shop_settings, stock_shop
from tests.graphql.test_shared_subscriptions import groups_of
from tests.graphql.test_websocket import TRANSPORT_WS, connected
from tests.support import GraphQLClient

SCHEDULE = """
mutation Schedule($input: ScheduleSaleInput!) {
  scheduleSale(input: $input) {
    sale { id channel skuId state secondsToStart registrationOpensAt registrationClosesAt registrations }
    userErrors { field message code }
  }
}
"""
CANCEL = """
mutation Cancel($id: ID!) { cancelSale(saleId: $id) { sale { state } userErrors { field code } } }
"""
REGISTER = """
mutation Register($input: RegisterForSaleInput!) {
  registerForSale(input: $input) { registered sale { registrations } userErrors { field code } }
}
"""
SALE = "query Sale($channel: String!, $sku: ID!) { sale(channel: $channel, skuId: $sku) { state registrations } }"
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { status } userErrors { field code } }
}
"""
SET_LIMIT = """
mutation Limit($input: SetPurchaseLimitInput!) { setPurchaseLimit(input: $input) { userErrors { code } } }
"""
CHANGES = """
query($code: String!) { catalogChanges(entity: SALE, code: $code) { edges { node { action actor before after } } } }
"""
PER_ADDRESS = 3


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    """A shop of its own whose app the tests reach, to move a sale's times as if the clock ran."""
    async with migrated_database(tmp_path_factory.mktemp("sale-events")) as url:
        settings = shop_settings(url, sale_registrations_per_address=PER_ADDRESS)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            app = create_app(settings)
            async with LifespanManager(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as http:
                    yield Shop(settings, db, keys, shelf, Ledger(db), GraphQLClient(http), extra={"app": app})
        finally:
            await db.dispose()


def _at(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


async def schedule(shop: Shop, sku: StockedSku, **times: Any) -> dict[str, Any]:
    times.setdefault("startsAt", _at(timedelta(hours=1)))
    answer = await shop.gql(SCHEDULE, {"input": {"channel": "web", "skuId": sku.gid, **times}}, key=shop.keys.admin)
    return answer["data"]["scheduleSale"]


async def scheduled(shop: Shop, sku: StockedSku, **times: Any) -> str:
    done = await schedule(shop, sku, **times)
    assert done["userErrors"] == [], done
    return str(done["sale"]["id"])


async def as_if(shop: Shop, sale_id: str, **times: object) -> None:
    """The sale's times moved, as if the clock had run on (every process hears of it)."""
    async with shop.db.sessions() as session, session.begin():
        await session.execute(update(SaleEvent).where(SaleEvent.id == decode_pk(sale_id, "Sale")).values(**times))
    shop.extra["app"].state.sales.forget()


async def started(shop: Shop, sale_id: str) -> None:
    """As if the sale had started a second ago (and its registration, if any, closed before)."""
    now, window = datetime.now(UTC), SaleEvent.registration_closes_at.is_not(None)
    await as_if(
        shop, sale_id, starts_at=now - timedelta(seconds=1),
        registration_opens_at=case((window, now - timedelta(seconds=3)), else_=None),
        registration_closes_at=case((window, now - timedelta(seconds=2)), else_=None),
    )


async def register(shop: Shop, sku: StockedSku, buyer: dict[str, Any], *, key: str | None = None) -> dict[str, Any]:
    answer = await shop.gql(REGISTER, {"input": {"channel": "web", "skuId": sku.gid, "buyer": buyer}}, key=key)
    return answer["data"]["registerForSale"]


async def place(shop: Shop, sku: StockedSku, buyer: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = await shop.gql(PLACE, {"input": order_input((sku, 1), buyer=buyer or {"phone": "13800138000"})})
    return answer["data"]["placeOrder"]


def refused(code: str) -> dict[str, Any]:
    return {"order": None, "userErrors": [{"field": "lines.0.skuId", "code": code}]}


PLACED = {"order": {"status": "PENDING_PAYMENT"}, "userErrors": []}


# --- scheduling ---------------------------------------------------------------------------------


async def test_an_operator_schedules_and_cancels_a_sale_and_both_are_in_the_change_log(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(3)
    done = await schedule(shop, sku, startsAt=_at(timedelta(hours=2)), registrationClosesAt=_at(timedelta(hours=1)))

    sale = done["sale"]
    assert (sale["channel"], sale["skuId"], sale["state"], sale["registrations"]) == ("web", sku.gid, "REGISTRATION_OPEN", 0)
    assert 7190 <= sale["secondsToStart"] <= 7200
    cancelled = (await shop.gql(CANCEL, {"id": sale["id"]}, key=shop.keys.admin))["data"]["cancelSale"]
    assert cancelled == {"sale": {"state": "CANCELLED"}, "userErrors": []}
    again = (await shop.gql(CANCEL, {"id": sale["id"]}, key=shop.keys.admin))["data"]["cancelSale"]
    assert again == {"sale": None, "userErrors": [{"field": "saleId", "code": "ALREADY_CANCELLED"}]}

    changes = (await shop.gql(CHANGES, {"code": f"web/{sku.code}"}, key=shop.keys.admin))["data"]["catalogChanges"]["edges"]
    cancel, scheduling = (edge["node"] for edge in changes)
    assert (scheduling["action"], scheduling["before"], scheduling["after"]["cancelled"]) == ("SCHEDULED", None, False)
    assert (cancel["action"], cancel["before"]["cancelled"], cancel["after"]["cancelled"]) == ("CANCELLED", False, True)
    assert cancel["actor"].startswith("admin:") and cancel["after"]["startsAt"] == scheduling["after"]["startsAt"]


@pytest.mark.parametrize(
    ("times", "field"),
    [
        ({"startsAt": timedelta(seconds=-1)}, "startsAt"),
        ({"startsAt": timedelta(days=400)}, "startsAt"),
        ({"startsAt": timedelta(hours=1), "endsAt": timedelta(minutes=59)}, "endsAt"),
        ({"startsAt": timedelta(hours=1), "registrationClosesAt": timedelta(hours=2)}, "registrationClosesAt"),
        ({"startsAt": timedelta(hours=1), "registrationClosesAt": timedelta(seconds=-1)}, "registrationClosesAt"),
        ({"startsAt": timedelta(days=100), "registrationOpensAt": timedelta(seconds=-1)}, "registrationOpensAt"),
    ],
    ids=["start in the past", "start beyond a year", "end before the start", "registration closing after the start",
         "registration closed already", "registration open longer than 90 days"],
)
async def test_a_schedule_out_of_range_is_refused_and_nothing_is_scheduled(
    shop: Shop, times: dict[str, timedelta], field: str
) -> None:
    sku = await shop.shelf.card_codes(1)

    done = await schedule(shop, sku, **{name: _at(delta) for name, delta in times.items()})

    assert (done["sale"], [(e["field"], e["code"]) for e in done["userErrors"]]) == (None, [(field, "INVALID_SALE")])
    assert (await shop.gql(SALE, {"channel": "web", "sku": sku.gid}))["data"]["sale"] is None


async def test_a_second_sale_waits_for_the_first_to_be_cancelled(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    first = await scheduled(shop, sku)

    assert (await schedule(shop, sku))["userErrors"] == [{"field": "skuId", "message": (
        "this SKU already has a sale on the channel that has not ended; cancel it first"), "code": "SALE_EXISTS"}]
    await shop.gql(CANCEL, {"id": first}, key=shop.keys.admin)
    assert (await schedule(shop, sku))["userErrors"] == []


async def test_only_operators_schedule_sales(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    variables = {"input": {"channel": "web", "skuId": sku.gid, "startsAt": _at(timedelta(hours=1))}}

    for key in (None, shop.keys.web, shop.keys.taobao):
        answer = await shop.gql(SCHEDULE, variables, key=key)
        assert answer["data"] is None and answer["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "UNAUTHENTICATED")


# --- before the start ---------------------------------------------------------------------------


async def test_one_second_before_the_start_an_order_is_refused_and_reserves_nothing(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(2)
    sale = await scheduled(shop, sku)
    orders = await shop.ledger.order_count()
    await as_if(shop, sale, starts_at=datetime.now(UTC) + timedelta(seconds=1))

    assert await place(shop, sku) == refused("SALE_NOT_STARTED")
    assert await shop.ledger.codes(sku) == {"AVAILABLE": 2}
    assert await shop.ledger.order_count() == orders

    await started(shop, sale)
    assert await place(shop, sku) == PLACED
    assert await shop.ledger.codes(sku) == {"AVAILABLE": 1, "RESERVED": 1}


async def test_after_its_end_the_sale_refuses_and_once_cancelled_the_sku_sells_as_before(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(2)
    sale = await scheduled(shop, sku, endsAt=_at(timedelta(hours=2)))
    now = datetime.now(UTC)
    await as_if(shop, sale, starts_at=now - timedelta(hours=2), ends_at=now - timedelta(seconds=1))

    assert await place(shop, sku) == refused("SALE_ENDED")
    await shop.gql(CANCEL, {"id": sale}, key=shop.keys.admin)
    assert await place(shop, sku) == PLACED


# --- registration -------------------------------------------------------------------------------


async def test_one_phone_in_any_spelling_registers_once(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    await scheduled(shop, sku, registrationClosesAt=_at(timedelta(minutes=30)))

    answers = [await register(shop, sku, {"phone": phone}) for phone in
               ("+86 138 0013 8000", "0086 13800138000", "138-0013-8000", "８６１３８００１３８０００")]

    assert answers == [{"registered": True, "sale": {"registrations": 1}, "userErrors": []}] * 4
    # The one registration did not use up the address's allowance either.
    for n in range(PER_ADDRESS - 1):
        assert (await register(shop, sku, {"phone": f"1390000000{n}"}))["userErrors"] == []


async def test_registration_outside_its_window_is_refused(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    sale = await scheduled(shop, sku, registrationOpensAt=_at(timedelta(minutes=10)))

    assert (await register(shop, sku, {"phone": "13800138000"}))["userErrors"] == [
        {"field": "skuId", "code": "REGISTRATION_NOT_OPEN"}]
    now = datetime.now(UTC)
    await as_if(shop, sale, registration_opens_at=now - timedelta(minutes=5), registration_closes_at=now)
    assert await register(shop, sku, {"phone": "13800138000"}) == {
        "registered": False, "sale": None, "userErrors": [{"field": "skuId", "code": "REGISTRATION_CLOSED"}]}
    assert (await shop.gql(SALE, {"channel": "web", "sku": sku.gid}))["data"]["sale"] == {"state": "SCHEDULED", "registrations": 0}


async def test_registering_needs_a_sale_with_registration_and_a_buyer(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    assert (await register(shop, sku, {"phone": "13800138000"}))["userErrors"] == [{"field": "skuId", "code": "NOT_FOUND"}]
    await scheduled(shop, sku)
    assert (await register(shop, sku, {"phone": "13800138000"}))["userErrors"] == [
        {"field": "skuId", "code": "REGISTRATION_NOT_REQUIRED"}]
    other = await shop.shelf.card_codes(1)
    await scheduled(shop, other, registrationClosesAt=_at(timedelta(minutes=30)))
    assert (await register(shop, other, {}))["userErrors"] == [{"field": "buyer", "code": "CONTACT_REQUIRED"}]
    assert (await register(shop, other, {"phone": "12345"}))["userErrors"] == [{"field": "buyer.phone", "code": "INVALID_INPUT"}]
    assert (await register(shop, other, {"deviceId": "d" * 129}))["userErrors"] == [
        {"field": "buyer.deviceId", "code": "INVALID_INPUT"}]


async def test_one_address_registers_a_few_buyers_and_no_more(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    await scheduled(shop, sku, registrationClosesAt=_at(timedelta(minutes=30)))

    answers = [await register(shop, sku, {"phone": f"1370000000{n}"}) for n in range(PER_ADDRESS + 2)]

    assert [a["userErrors"] for a in answers] == [[]] * PER_ADDRESS + [[{"field": None, "code": "REGISTRATION_LIMIT"}]] * 2
    # Those registered stay registered, and may say so again.
    assert (await register(shop, sku, {"phone": "13700000000"}))["userErrors"] == []
    assert (await shop.gql(SALE, {"channel": "web", "sku": sku.gid}))["data"]["sale"]["registrations"] == PER_ADDRESS


async def test_a_flood_of_registrations_sent_at_once_from_one_address_stops_at_the_cap(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    await scheduled(shop, sku, registrationClosesAt=_at(timedelta(minutes=30)))

    answers = await asyncio.gather(*(register(shop, sku, {"phone": f"1360000000{n}"}) for n in range(10)))

    assert sorted(a["registered"] for a in answers) == [False] * (10 - PER_ADDRESS) + [True] * PER_ADDRESS
    assert (await shop.gql(SALE, {"channel": "web", "sku": sku.gid}))["data"]["sale"]["registrations"] == PER_ADDRESS


async def test_a_key_registers_buyers_on_its_own_channel_only(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    await scheduled(shop, sku, registrationClosesAt=_at(timedelta(minutes=30)))

    answer = await shop.gql(REGISTER, {"input": {"channel": "web", "skuId": sku.gid, "buyer": {"phone": "13800138000"}}},
                            key=shop.keys.taobao)

    assert answer["data"] is None and answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# --- at the start -------------------------------------------------------------------------------


async def test_at_the_start_only_registered_buyers_buy_and_within_their_limit(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(5)
    sale = await scheduled(shop, sku, registrationClosesAt=_at(timedelta(minutes=30)))
    limit = {"channel": "web", "skuId": sku.gid, "perBuyer": 1, "period": "SALE", "startsAt": _at(timedelta(hours=-1))}
    assert (await shop.gql(SET_LIMIT, {"input": limit}, key=shop.keys.admin))["data"]["setPurchaseLimit"]["userErrors"] == []
    assert (await register(shop, sku, {"phone": "+86 158 0000 1111"}))["registered"]
    assert (await register(shop, sku, {"deviceId": "Phone-Of-Wang"}))["registered"]
    await started(shop, sale)

    assert await place(shop, sku, {"phone": "13900002222"}) == refused("NOT_REGISTERED")
    assert await shop.ledger.codes(sku) == {"AVAILABLE": 5}
    assert await place(shop, sku, {"phone": "0086 15800001111"}) == PLACED
    assert await place(shop, sku, {"phone": "15800001111"}) == {
        "order": None, "userErrors": [{"field": "lines.0.quantity", "code": "PURCHASE_LIMIT"}]}
    assert await place(shop, sku, {"phone": "13900003333", "deviceId": "phone-of-wang"}) == PLACED
    assert await shop.ledger.codes(sku) == {"AVAILABLE": 3, "RESERVED": 2}


async def test_a_sale_of_one_sku_leaves_the_others_of_the_order_alone(shop: Shop) -> None:
    on_sale, other = await shop.shelf.card_codes(1), await shop.shelf.card_codes(1)
    await scheduled(shop, on_sale)

    assert await place(shop, other) == PLACED
    answer = await shop.gql(PLACE, {"input": order_input((other, 1), (on_sale, 1))})
    assert answer["data"]["placeOrder"] == {"order": None, "userErrors": [{"field": "lines.1.skuId", "code": "SALE_NOT_STARTED"}]}


# --- live: the countdown, the start, the warm-up ------------------------------------------------

FOLLOW = "subscription Follow($sku: ID!) { saleEvent(channel: \"web\", skuId: $sku) { state secondsToStart } }"


async def _moments(ws: Any, until: int = 8) -> list[dict[str, Any]]:
    """Every moment pushed until the server completes the stream."""
    found = []
    while True:
        message = await ws.receive_json(timeout=until)
        if message["type"] == "complete":
            return found
        assert message["type"] == "next", message
        found.append(message["payload"]["data"]["saleEvent"])


@contextlib.asynccontextmanager
async def following(shop: Shop, sku: StockedSku) -> AsyncIterator[Any]:
    async with connected(shop.extra["app"], TRANSPORT_WS) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json({"id": "s", "type": "subscribe", "payload": {"query": FOLLOW, "variables": {"sku": sku.gid}}})
        yield ws


async def test_subscribers_hear_the_seconds_run_down_and_then_the_start(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    await scheduled(shop, sku, startsAt=_at(timedelta(seconds=3.5)))

    async with following(shop, sku) as ws:
        moments = await _moments(ws)

    *countdown, last = moments
    assert last == {"state": "STARTED", "secondsToStart": 0}
    seconds = [moment["secondsToStart"] for moment in countdown]
    assert {moment["state"] for moment in countdown} == {"SCHEDULED"} and len(seconds) >= 2
    assert seconds == sorted(set(seconds), reverse=True) and seconds[0] <= 4 and seconds[-1] >= 1


async def test_subscribers_hear_a_cancellation_and_the_stream_ends(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    sale = await scheduled(shop, sku, registrationClosesAt=_at(timedelta(minutes=30)))

    async with following(shop, sku) as ws:
        first = (await ws.receive_json(timeout=5))["payload"]["data"]["saleEvent"]
        await shop.gql(CANCEL, {"id": sale}, key=shop.keys.admin)
        rest = await _moments(ws)

    assert first["state"] == "REGISTRATION_OPEN" and 3590 <= first["secondsToStart"] <= 3600
    assert [moment["state"] for moment in rest] == ["CANCELLED"]


async def test_every_process_warms_for_a_sale_a_few_seconds_before_its_start(shop: Shop) -> None:
    app = shop.extra["app"]
    sku = await shop.shelf.card_codes(1)
    sale = await scheduled(shop, sku, startsAt=_at(timedelta(hours=1)), registrationClosesAt=_at(timedelta(minutes=30)))
    start = datetime.now(UTC) + timedelta(hours=1)
    pk = decode_pk(sale, "Sale")
    # The only sale of the shop: the other tests' sales are cancelled, so their warm-ups do nothing.
    async with shop.db.sessions() as session, session.begin():
        await session.execute(
            update(SaleEvent).where(SaleEvent.id != pk, SaleEvent.cancelled_at.is_(None)).values(cancelled_at=datetime.now(UTC))
        )
    app.state.sales.forget()

    async def jobs_due(moment: datetime) -> None:
        while await app.state.worker.run_once(now=moment):
            pass

    await jobs_due(start - timedelta(seconds=shop.settings.sale_warm_seconds + 10))
    await asyncio.sleep(0.3)
    assert pk not in app.state.sale_warmer.warmed
    await jobs_due(start - timedelta(seconds=shop.settings.sale_warm_seconds - 1))
    for _ in range(50):  # the warm-up runs in the background once the broker delivers the job's message
        if pk in app.state.sale_warmer.warmed:
            break
        await asyncio.sleep(0.1)
    assert pk in app.state.sale_warmer.warmed


async def test_a_late_subscriber_of_a_followed_sale_hears_its_state_at_once_and_then_its_end(shop: Shop) -> None:
    sku = await shop.shelf.card_codes(1)
    sale = await scheduled(shop, sku, registrationClosesAt=_at(timedelta(minutes=30)))

    async with following(shop, sku) as first:
        opened = (await first.receive_json(timeout=5))["payload"]["data"]["saleEvent"]
        async with following(shop, sku) as late:
            joined = (await late.receive_json(timeout=5))["payload"]["data"]["saleEvent"]
            assert groups_of(shop.extra["app"]).members() == 2  # one delivery for both
            await shop.gql(CANCEL, {"id": sale}, key=shop.keys.admin)
            ends = [await _moments(ws) for ws in (first, late)]

    assert opened["state"] == joined["state"] == "REGISTRATION_OPEN"
    assert [[moment["state"] for moment in end] for end in ends] == [["CANCELLED"], ["CANCELLED"]]
