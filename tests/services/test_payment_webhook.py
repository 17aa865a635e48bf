"""The payment provider's webhook: signed deliveries pay an order once, or are owed back once
when the order cannot take them; everything else is refused."""

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
from domain.ledger import Account
from models import LedgerEntry, Order, PaymentNotification
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
REVIEW = """
mutation Review($id: ID!, $decision: RiskDecision!) { reviewOrder(orderId: $id, decision: $decision) { userErrors { code } } }
"""
REFUNDS = """
query Refunds($id: ID!) {
  order(id: $id) { status refunds { id amount { amount currency } status reference reason createdAt } }
}
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


async def place(shop: Shop, quantity: int = 2, phone: str | None = None) -> dict[str, Any]:
    sku: StockedSku = shop.extra["sku"]
    buyer = {"email": "buyer@example.com", "rechargeAccount": "player-1001"}
    order_input = {
        "channel": "b2b-demo",
        "idempotencyKey": f"PO-{uuid.uuid4().hex}",
        "lines": [{"skuId": sku.gid, "quantity": quantity}],
        "buyer": {**buyer, "phone": phone} if phone else buyer,
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


async def owed_on_ledger(shop: Shop, order: dict[str, Any]) -> int:
    """What the ledger says the platform owes back for this order's payments, in fen."""
    async with shop.db.sessions() as session:
        total = await session.scalar(
            select(func.coalesce(-func.sum(LedgerEntry.amount_fen), 0))
            .join(Order, Order.id == LedgerEntry.order_id)
            .where(Order.number == order["number"], LedgerEntry.account == Account.REFUNDS_PAYABLE)
        )
    return int(total or 0)


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


# --- signed and accepted, but the order cannot take it: owed back, once -------------------


async def expired(shop: Shop, order: dict[str, Any]) -> None:
    """Its deadline passed; no sweep has run: the payment itself finds it due."""
    async with shop.db.sessions() as session, session.begin():
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(update(Order).where(Order.number == order["number"]).values(expires_at=past))


async def cancelled(shop: Shop, order: dict[str, Any]) -> None:
    answer = await shop.gql(CANCEL, {"id": order["id"]}, key=shop.keys.b2b)
    assert answer["data"]["cancelOrder"]["userErrors"] == []


async def paid_otherwise(shop: Shop, order: dict[str, Any]) -> None:
    answer = await shop.gql(PAY, {"id": order["id"], "reference": "bank-transfer-1"}, key=shop.keys.admin)
    assert answer["data"]["payOrder"]["userErrors"] == []


async def held(shop: Shop) -> dict[str, Any]:
    """An order the risk rules hold for review (a virtual-operator phone)."""
    order = await place(shop, phone="17012345678")
    assert (await state(shop, order))["status"] == "REVIEW"
    return order


async def rejected(shop: Shop, order: dict[str, Any]) -> None:
    answer = await shop.gql(REVIEW, {"id": order["id"], "decision": "REJECT"}, key=shop.keys.admin)
    assert answer["data"]["reviewOrder"]["userErrors"] == []


async def in_review(shop: Shop, order: dict[str, Any]) -> None:
    pass


UNUSABLE = [
    pytest.param(False, expired, "EXPIRED", "the order expired before it was paid", id="expired"),
    pytest.param(False, cancelled, "CANCELLED", "the order was cancelled", id="cancelled"),
    pytest.param(True, in_review, "REVIEW", "the order is held for risk review", id="in review"),
    pytest.param(True, rejected, "REJECTED", "the order was rejected on review", id="rejected"),
    pytest.param(False, paid_otherwise, "PAID", "the order was already paid with another payment", id="paid otherwise"),
]


@pytest.mark.parametrize(("review", "make_unusable", "status", "reason"), UNUSABLE)
async def test_a_payment_the_order_cannot_take_is_accepted_and_owed_back_once(
    shop: Shop, review: bool, make_unusable: Any, status: str, reason: str
) -> None:
    # Given an order that can no longer take a payment
    order = await held(shop) if review else await place(shop)
    await make_unusable(shop, order)
    delivered = notification(order)

    # When the provider reports a payment for it, again, and in another notification of the same payment
    first = await deliver(shop, delivered)
    replayed = await deliver(shop, delivered)
    again = await deliver(shop, notification(order, paymentReference=delivered["paymentReference"]))

    # Then it is accepted (the provider stops retrying), recorded once as money to return, and
    # the order is left as it was
    owed = {"status": "refund_requested", "orderNumber": order["number"],
            "message": f"{reason}: the payment will be returned"}
    assert [(r.status_code, r.json()) for r in (first, replayed, again)] == [
        (200, owed), (200, {"status": "duplicate", "orderNumber": order["number"]}), (200, owed),
    ]
    seen = await shop.gql(REFUNDS, {"id": order["id"]}, key=shop.keys.admin)
    refund = seen["data"]["order"]["refunds"]
    assert seen["data"]["order"]["status"] == status
    assert [{k: v for k, v in r.items() if k not in ("id", "createdAt")} for r in refund] == [{
        "amount": {"amount": "19.80", "currency": "CNY"}, "status": "REQUESTED",
        "reference": delivered["paymentReference"], "reason": reason,
    }]
    assert await recorded(shop, delivered["id"]) == 1
    # and on the ledger the platform owes the payer that amount
    assert await owed_on_ledger(shop, order) == 1980


async def test_a_payment_after_the_deadline_expires_the_order_and_is_owed_back(shop: Shop) -> None:
    order = await place(shop)
    await expired(shop, order)

    response = await deliver(shop, notification(order))

    assert response.json()["status"] == "refund_requested"
    events = (await state(shop, order))["events"]
    assert events[-1] == {"actor": "system", "fromStatus": "PENDING_PAYMENT", "toStatus": "EXPIRED", "reason": "not paid in time"}


async def test_a_payment_owed_back_in_review_stays_owed_back_after_the_order_is_approved(shop: Shop) -> None:
    # Given a payment that arrived while the order was held for review
    order = await held(shop)
    early = notification(order)
    assert (await deliver(shop, early)).json()["status"] == "refund_requested"
    approved = await shop.gql(REVIEW, {"id": order["id"], "decision": "PASS"}, key=shop.keys.admin)
    assert approved["data"]["reviewOrder"]["userErrors"] == []

    # When that same payment is reported again, and then a new payment arrives
    same = await deliver(shop, notification(order, paymentReference=early["paymentReference"]))
    fresh = notification(order)
    paid = await deliver(shop, fresh)

    # Then the first is still only owed back (never both returned and used); the second pays
    assert [same.json()["status"], paid.json()["status"]] == ["refund_requested", "paid"]
    seen = (await shop.gql(REFUNDS, {"id": order["id"]}, key=shop.keys.admin))["data"]["order"]
    assert (seen["status"], [r["reference"] for r in seen["refunds"]]) == ("PAID", [early["paymentReference"]])
    assert await owed_on_ledger(shop, order) == 1980


async def test_of_a_notification_and_a_cancel_at_once_exactly_one_wins(shop: Shop) -> None:
    # Given unpaid orders, each paid by the provider and cancelled by its partner at about the
    # same moment (one side ahead for the first orders, the other for the last, so each wins some)
    orders = [await place(shop) for _ in range(10)]
    delivered = [notification(order) for order in orders]

    async def deliver_after(seconds: float, body: dict[str, Any]) -> httpx.Response:
        await asyncio.sleep(seconds)
        return await deliver(shop, body)

    async def cancel_after(seconds: float, order: dict[str, Any]) -> None:
        await asyncio.sleep(seconds)
        await shop.gql(CANCEL, {"id": order["id"]}, key=shop.keys.b2b)

    answers = await asyncio.gather(*(deliver_after(0.02 * (9 - n), body) for n, body in enumerate(delivered)),
                                   *(cancel_after(0.02 * n, order) for n, order in enumerate(orders)))

    # Then every notification is accepted, and each order is either paid and owes nothing, or
    # cancelled and owes exactly that payment back
    assert {(r.status_code, r.json()["status"]) for r in answers[:len(orders)]} <= {(200, "paid"), (200, "refund_requested")}
    for order, body in zip(orders, delivered):
        seen = (await shop.gql(REFUNDS, {"id": order["id"]}, key=shop.keys.admin))["data"]["order"]
        returned = [(r["reference"], r["amount"]["amount"]) for r in seen["refunds"]]
        assert (seen["status"], returned) in (("PAID", []), ("CANCELLED", [(body["paymentReference"], "19.80")])), seen
        assert await owed_on_ledger(shop, order) == (0 if seen["status"] == "PAID" else 1980)


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
