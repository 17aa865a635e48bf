"""The payment provider's webhook: signed deliveries pay an order once; everything else is refused."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from starlette.applications import Starlette
from starlette.routing import Route

from config import Settings, development_webhook_secret
from models import Order, PaymentNotification
from services.payments.notifications import MAX_NOTIFICATION_ID
from tests.e2e.shop import Shop, StockedSku, open_shop
from transport.webhooks import PaymentWebhook

SECRET = b"whsec_test_7c1d0a3e9f6b42d8a5e1"

PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number total { amount currency } } userErrors { code } }
}
"""
ORDER = """
query Order($id: ID!) {
  order(id: $id) { status paymentReference events { actor fromStatus toStatus reason } }
}
"""
CANCEL = """
mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { order { status } userErrors { code } } }
"""
PAY = """
mutation Pay($id: ID!, $reference: String!) { payOrder(orderId: $id, paymentReference: $reference) { userErrors { code } } }
"""

PLACED = [
    {"actor": "partner:{prefix}", "fromStatus": None, "toStatus": "PENDING_RISK", "reason": "placed"},
    {"actor": "system", "fromStatus": "PENDING_RISK", "toStatus": "PENDING_PAYMENT", "reason": "no risk rules matched"},
]


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    # The expiry sweep is held back so that a test decides when an order is found expired.
    folder = tmp_path_factory.mktemp("payment-webhook")
    async with open_shop(folder, payment_webhook_secret=SECRET, expiry_interval_seconds=3600) as opened:
        opened.extra["sku"] = await opened.shelf.counter(10_000, price_fen=990)
        yield opened


async def place(shop: Shop, quantity: int = 2) -> dict[str, Any]:
    sku: StockedSku = shop.extra["sku"]
    order_input = {
        "channel": "b2b-demo",
        "idempotencyKey": f"PO-{uuid.uuid4().hex}",
        "lines": [{"skuId": sku.gid, "quantity": quantity}],
        "buyer": {"email": "buyer@example.com", "rechargeAccount": "player-1001"},
    }
    answer = await shop.gql(PLACE, {"input": order_input}, key=shop.keys.b2b)
    assert answer["data"]["placeOrder"]["userErrors"] == []
    return answer["data"]["placeOrder"]["order"]


def notification(order: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {
        "id": f"evt_{uuid.uuid4().hex}",
        "orderNumber": order["number"],
        "paymentReference": f"alipay-{uuid.uuid4().hex[:12]}",
        "amount": order["total"]["amount"],
        "currency": order["total"]["currency"],
    }
    body.update(changes)
    return body


def signed(body: bytes, *, timestamp: int | None = None, secret: bytes = SECRET) -> dict[str, str]:
    """The headers a provider sends: the same three lines as the README."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {"x-quanyi-timestamp": stamp, "x-quanyi-signature": f"v1={digest}", "content-type": "application/json"}


async def deliver(shop: Shop, payload: dict[str, Any] | bytes, **signing: Any) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return await shop.client.http.post("/webhooks/payment", content=body, headers=signed(body, **signing))


async def state(shop: Shop, order: dict[str, Any]) -> dict[str, Any]:
    answer = await shop.gql(ORDER, {"id": order["id"]}, key=shop.keys.admin)
    return answer["data"]["order"]


def placed_events(shop: Shop) -> list[dict[str, Any]]:
    prefix = shop.keys.prefix(shop.keys.b2b)
    return [{**event, "actor": event["actor"].format(prefix=prefix)} for event in PLACED]


def unpaid(shop: Shop) -> dict[str, Any]:
    return {"status": "PENDING_PAYMENT", "paymentReference": None, "events": placed_events(shop)}


def paid_by(shop: Shop, delivered: dict[str, Any]) -> dict[str, Any]:
    reference = delivered["paymentReference"]
    return {
        "status": "PAID",
        "paymentReference": reference,
        "events": [
            *placed_events(shop),
            {"actor": f"webhook:{delivered['id']}", "fromStatus": "PENDING_PAYMENT", "toStatus": "PAID",
             "reason": f"payment {reference}"},
        ],
    }


async def recorded(shop: Shop, notification_id: str) -> int:
    async with shop.db.sessions() as session:
        found = await session.scalar(
            select(func.count()).select_from(PaymentNotification).where(PaymentNotification.notification_id == notification_id)
        )
    return int(found or 0)


# --- a valid notification, once and again -------------------------------------------------


async def test_a_signed_notification_pays_the_order(shop: Shop) -> None:
    order = await place(shop)
    delivered = notification(order)

    response = await deliver(shop, delivered)

    assert (response.status_code, response.json()) == (200, {"status": "paid", "orderNumber": order["number"]})
    assert await state(shop, order) == paid_by(shop, delivered)
    assert await recorded(shop, delivered["id"]) == 1


async def test_a_replayed_notification_changes_nothing(shop: Shop) -> None:
    order = await place(shop)
    delivered = notification(order)
    first = await deliver(shop, delivered)

    again = await deliver(shop, delivered)

    assert [first.status_code, again.status_code] == [200, 200]
    assert again.json() == {"status": "duplicate", "orderNumber": order["number"]}
    assert await state(shop, order) == paid_by(shop, delivered)
    assert await recorded(shop, delivered["id"]) == 1


async def test_ten_concurrent_deliveries_of_one_notification_pay_once(shop: Shop) -> None:
    order = await place(shop)
    delivered = notification(order)

    responses = await asyncio.gather(*(deliver(shop, delivered) for _ in range(10)))

    assert sorted((r.status_code, r.json()["status"]) for r in responses) == [(200, "duplicate")] * 9 + [(200, "paid")]
    assert await state(shop, order) == paid_by(shop, delivered)
    assert await recorded(shop, delivered["id"]) == 1


async def test_another_notification_of_the_same_payment_is_harmless(shop: Shop) -> None:
    order = await place(shop)
    first = notification(order)
    await deliver(shop, first)
    second = notification(order, paymentReference=first["paymentReference"])

    response = await deliver(shop, second)

    assert (response.status_code, response.json()) == (200, {"status": "already_paid", "orderNumber": order["number"]})
    assert await state(shop, order) == paid_by(shop, first)


# --- deliveries that are not provably from the provider, now ------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no headers"),
        pytest.param({"x-quanyi-timestamp": "{now}"}, id="no signature"),
        pytest.param({"x-quanyi-signature": "v1={good}"}, id="no timestamp"),
        pytest.param({"x-quanyi-timestamp": "{now}", "x-quanyi-signature": "v1=" + "0" * 64}, id="wrong digest"),
        pytest.param({"x-quanyi-timestamp": "{now}", "x-quanyi-signature": "{good}"}, id="no scheme"),
        pytest.param({"x-quanyi-timestamp": "{now}", "x-quanyi-signature": "v0={good}"}, id="unknown scheme"),
        pytest.param({"x-quanyi-timestamp": "{later}", "x-quanyi-signature": "v1={good}"}, id="timestamp not signed"),
        pytest.param({"x-quanyi-timestamp": "{now}.0", "x-quanyi-signature": "v1={good}"}, id="timestamp not an integer"),
    ],
)
async def test_an_unsigned_or_badly_signed_delivery_is_refused(shop: Shop, headers: dict[str, str]) -> None:
    order = await place(shop)
    body = json.dumps(notification(order)).encode()
    good = signed(body)
    now = good["x-quanyi-timestamp"]
    values = {"now": now, "later": str(int(now) + 1), "good": good["x-quanyi-signature"].removeprefix("v1=")}
    sent = {name: value.format(**values) for name, value in headers.items()}

    response = await shop.client.http.post("/webhooks/payment", content=body, headers=sent)

    assert (response.status_code, response.json()["error"]) == (401, "BAD_SIGNATURE")
    assert await state(shop, order) == unpaid(shop)


async def test_a_body_signed_with_another_secret_is_refused(shop: Shop) -> None:
    order = await place(shop)

    response = await deliver(shop, notification(order), secret=b"whsec_someone_else_entirely")

    assert (response.status_code, response.json()["error"]) == (401, "BAD_SIGNATURE")
    assert await state(shop, order) == unpaid(shop)


async def test_a_body_changed_after_signing_is_refused(shop: Shop) -> None:
    order = await place(shop)
    body = json.dumps(notification(order)).encode()
    headers = signed(body)
    changed = body.replace(order["total"]["amount"].encode(), b"0.01")

    response = await shop.client.http.post("/webhooks/payment", content=changed, headers=headers)

    assert (response.status_code, response.json()["error"]) == (401, "BAD_SIGNATURE")
    assert await state(shop, order) == unpaid(shop)


async def test_one_good_signature_among_several_is_enough(shop: Shop) -> None:
    # How a provider rotates its secret: it signs with the old and the new one for a while.
    order = await place(shop)
    body = json.dumps(notification(order)).encode()
    headers = signed(body)
    old = signed(body, timestamp=int(headers["x-quanyi-timestamp"]), secret=b"whsec_the_previous_secret")
    headers["x-quanyi-signature"] = f"{old['x-quanyi-signature']}, {headers['x-quanyi-signature']}"

    response = await shop.client.http.post("/webhooks/payment", content=body, headers=headers)

    assert (response.status_code, response.json()["status"]) == (200, "paid")


@pytest.mark.parametrize("age", [301, -301, 86_400], ids=["stale", "from the future", "a day old"])
async def test_a_timestamp_outside_the_tolerance_is_refused(shop: Shop, age: int) -> None:
    order = await place(shop)

    response = await deliver(shop, notification(order), timestamp=int(time.time()) - age)

    assert response.status_code == 401
    assert response.json() == {"error": "BAD_SIGNATURE", "message": "the timestamp is outside the accepted window"}
    assert await state(shop, order) == unpaid(shop)


async def test_a_timestamp_within_the_tolerance_is_accepted(shop: Shop) -> None:
    order = await place(shop)

    response = await deliver(shop, notification(order), timestamp=int(time.time()) - 240)

    assert response.status_code == 200


# --- signed, but not acceptable -----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not JSON"),
        pytest.param(b"[]", id="not an object"),
        pytest.param({"id": None}, id="no id"),
        pytest.param({"id": ""}, id="empty id"),
        pytest.param({"id": "evt with spaces"}, id="id with spaces"),
        pytest.param({"id": "e" * (MAX_NOTIFICATION_ID + 1)}, id="id too long"),
        pytest.param({"orderNumber": 42}, id="order number not a string"),
        pytest.param({"paymentReference": ""}, id="empty reference"),
        pytest.param({"paymentReference": "r" * 129}, id="reference too long"),
        pytest.param({"amount": 19.8}, id="amount a float"),
        pytest.param({"amount": "1e3"}, id="amount an exponent"),
        pytest.param({"amount": "-19.80"}, id="amount negative"),
        pytest.param({"currency": "cny"}, id="currency not a code"),
        pytest.param({"currency": None}, id="no currency"),
    ],
)
async def test_a_malformed_notification_is_refused(shop: Shop, body: dict[str, Any] | bytes) -> None:
    order = await place(shop)
    payload = body if isinstance(body, bytes) else {k: v for k, v in notification(order, **body).items() if v is not None}

    response = await deliver(shop, payload)

    assert (response.status_code, response.json()["error"]) == (400, "MALFORMED")
    assert await state(shop, order) == unpaid(shop)


async def test_a_body_over_64_kb_is_refused(shop: Shop) -> None:
    order = await place(shop)
    payload = notification(order, padding="x" * (64 * 1024))

    response = await deliver(shop, payload)

    assert (response.status_code, response.json()["error"]) == (413, "TOO_LARGE")
    assert await state(shop, order) == unpaid(shop)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"amount": "0.01"}, id="too little"),
        pytest.param({"amount": "9999.00"}, id="too much"),
        pytest.param({"amount": "19.801"}, id="more decimals than fen"),
        pytest.param({"currency": "USD"}, id="another currency"),
        pytest.param({"currency": "XYZ"}, id="an unknown currency"),
    ],
)
async def test_an_amount_other_than_the_order_total_does_not_pay_it(shop: Shop, changes: dict[str, str]) -> None:
    order = await place(shop)
    assert order["total"] == {"amount": "19.80", "currency": "CNY"}
    delivered = notification(order, **changes)

    response = await deliver(shop, delivered)

    assert response.status_code == 422
    assert response.json() == {"error": "AMOUNT_MISMATCH", "message": "the amount or currency is not the order's total"}
    assert await state(shop, order) == unpaid(shop)
    assert await recorded(shop, delivered["id"]) == 0


async def test_the_same_amount_written_differently_pays(shop: Shop) -> None:
    order = await place(shop)

    response = await deliver(shop, notification(order, amount="19.8"))

    assert response.json()["status"] == "paid"


async def test_a_notification_for_an_unknown_order_is_not_found(shop: Shop) -> None:
    order = await place(shop)

    response = await deliver(shop, notification(order, orderNumber="QY0000000000000000"))

    assert (response.status_code, response.json()) == (404, {"error": "UNKNOWN_ORDER", "message": "no such order"})


async def test_an_expired_order_is_a_conflict_and_stays_expired(shop: Shop) -> None:
    order = await place(shop)
    async with shop.db.sessions() as session, session.begin():
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(update(Order).where(Order.number == order["number"]).values(expires_at=past))
    delivered = notification(order)

    response = await deliver(shop, delivered)
    again = await deliver(shop, delivered)

    expected = {"error": "ORDER_EXPIRED", "message": "the order expired before it was paid"}
    assert [(response.status_code, response.json()), (again.status_code, again.json())] == [(409, expected)] * 2
    assert (await state(shop, order))["status"] == "EXPIRED"
    assert await recorded(shop, delivered["id"]) == 0


async def test_a_cancelled_order_is_a_conflict(shop: Shop) -> None:
    order = await place(shop)
    cancelled = await shop.gql(CANCEL, {"id": order["id"]}, key=shop.keys.b2b)
    assert cancelled["data"]["cancelOrder"]["userErrors"] == []

    response = await deliver(shop, notification(order))

    assert response.status_code == 409
    assert response.json() == {"error": "INVALID_STATE", "message": "an order that is CANCELLED cannot be paid"}


async def test_an_order_paid_with_another_reference_is_a_conflict(shop: Shop) -> None:
    order = await place(shop)
    paid = await shop.gql(PAY, {"id": order["id"], "reference": "bank-transfer-1"}, key=shop.keys.admin)
    assert paid["data"]["payOrder"]["userErrors"] == []

    response = await deliver(shop, notification(order))

    assert response.status_code == 409
    assert (await state(shop, order))["paymentReference"] == "bank-transfer-1"


# --- what is logged, and how the secret is configured --------------------------------------


async def test_logs_name_the_notification_and_order_but_no_secret(shop: Shop, caplog: pytest.LogCaptureFixture) -> None:
    order = await place(shop)
    delivered = notification(order)
    body = json.dumps(delivered).encode()
    headers = signed(body)

    with caplog.at_level(logging.DEBUG):
        await shop.client.http.post("/webhooks/payment", content=body, headers=headers)

    logged = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("quanyi"))
    assert f"payment notification {delivered['id']} for order {order['number']}: paid" in logged
    for secret in (SECRET.decode(), headers["x-quanyi-signature"], delivered["paymentReference"]):
        assert secret not in logged


def test_the_embedded_mode_derives_a_webhook_secret_from_the_secret_key(tmp_path: Any) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'quanyi.db'}"

    settings = Settings.from_env({"QUANYI_DATABASE_URL": database_url})

    assert settings.payment_webhook_secret == development_webhook_secret(settings.secret_key)
    assert len(settings.payment_webhook_secret) == 32
    assert settings.payment_webhook_secret != settings.secret_key
    assert settings.payment_webhook_tolerance_seconds == 300
    assert "payment_webhook_secret" not in repr(settings)


def test_production_takes_the_webhook_secret_from_the_environment() -> None:
    env = {
        "QUANYI_DATABASE_URL": "postgresql+asyncpg://quanyi@db.internal/quanyi",
        "QUANYI_SECRET_KEY": "A" * 43,
        "QUANYI_PAYMENT_WEBHOOK_SECRET": SECRET.decode(),
        "QUANYI_PAYMENT_WEBHOOK_TOLERANCE_SECONDS": "120",
    }

    settings = Settings.from_env(env)

    assert (settings.payment_webhook_secret, settings.payment_webhook_tolerance_seconds) == (SECRET, 120)
    without = Settings.from_env({k: v for k, v in env.items() if k != "QUANYI_PAYMENT_WEBHOOK_SECRET"})
    assert without.payment_webhook_secret == b""
    with pytest.raises(ValueError, match="at least 16 characters"):
        Settings.from_env({**env, "QUANYI_PAYMENT_WEBHOOK_SECRET": "short"})


async def test_without_a_secret_the_webhook_is_off() -> None:
    webhook = PaymentWebhook(Settings(), db=None, broker=None)  # type: ignore[arg-type]  # never reached
    app = Starlette(routes=[Route("/webhooks/payment", webhook.handle, methods=["POST"])])
    body = b'{"id": "evt_1"}'

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://quanyi.test") as http:
        response = await http.post("/webhooks/payment", content=body, headers=signed(body, secret=b""))

    assert (response.status_code, response.json()["error"]) == (503, "NOT_CONFIGURED")
