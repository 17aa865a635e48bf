"""Outbound webhooks through the API: registered, signed, retried, redelivered, never on the request path."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from standardwebhooks import Webhook

from models import Job, WebhookAttempt, WebhookDelivery
from services.webhooks import dispatch
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Gate, Receiver

REDELIVER = """
mutation Redeliver($id: ID!) { redeliverWebhook(deliveryId: $id) { delivery { status } userErrors { code } } }
"""
ROTATE = """
mutation Rotate($id: ID!) { rotateWebhookSecret(id: $id) { endpoint { secret } userErrors { code } } }
"""


def _delivered(receiver: Receiver, path: str, kind: str) -> list[dict]:
    return [json.loads(r.body) for r in receiver.at(path) if json.loads(r.body)["type"] == kind]


async def test_a_partners_endpoint_receives_order_delivered_signed_for_the_standard_library(
    clean: Hooks, receiver: Receiver,
) -> None:
    endpoint = await clean.endpoint(f"{receiver.url}/taobao-signed", ["order.delivered"], key=clean.keys.taobao)
    assert endpoint["secret"].startswith("whsec_") and endpoint["channel"] == "taobao"
    order = await clean.place(("QB-10", 1), channel="taobao", key=clean.keys.taobao)
    await clean.pay(order)
    await clean.send_all()
    [request] = receiver.at("/taobao-signed")
    verified = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert verified["type"] == "order.delivered"
    assert verified["data"]["orderId"] == order["id"] and verified["data"]["number"] == order["number"]
    assert (verified["data"]["channel"], verified["data"]["status"]) == ("taobao", "DELIVERED")
    assert request.headers["webhook-id"].startswith("msg_") and request.headers["webhook-signature"].startswith("v1,")
    with pytest.raises(Exception):  # another secret does not verify it
        Webhook("whsec_" + "A" * 32).verify(request.body, request.headers)


async def test_a_receiver_failing_three_times_gets_the_event_once_more_on_the_schedule(
    clean: Hooks, receiver: Receiver,
) -> None:
    endpoint = await clean.endpoint(f"{receiver.url}/flaky", ["order.paid"], key=clean.keys.admin)
    order = await clean.place(("QB-10", 1))
    await clean.pay(order)
    receiver.answers[:] = [500, 500, 500]
    # The first attempt fails; the next is planned 5 s later (jittered by at most a fifth).
    await clean.webhook_worker.run_once()
    async with clean.db.fresh_sessions() as session:
        job = await session.scalar(select(Job).where(Job.kind == "webhook", Job.status == "READY"))
        failed_at = await session.scalar(select(WebhookAttempt.at).order_by(WebhookAttempt.id.desc()).limit(1))
    assert job is not None and failed_at is not None
    assert 4.0 <= (job.run_after - failed_at).total_seconds() <= 6.0
    await clean.send_all()
    requests = receiver.at("/flaky")
    assert len(requests) == 4 and len({r.headers["webhook-id"] for r in requests}) == 1
    [delivery] = await clean.deliveries(endpoint)
    assert (delivery["status"], delivery["attemptCount"]) == ("DELIVERED", 4)
    assert [a["statusCode"] for a in delivery["attempts"]] == [500, 500, 500, 200]
    assert all(len(a["response"]) <= 500 for a in delivery["attempts"])
    await clean.send_all()
    assert len(receiver.at("/flaky")) == 4  # delivered: never sent again


async def test_placing_and_paying_never_call_a_receiver_and_a_dead_one_is_only_tried_by_the_worker(
    clean: Hooks, dead_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = await clean.endpoint(dead_url, ["order.paid", "order.status_changed", "order.delivered"], key=clean.keys.admin)
    calls: list[str] = []
    receiver = clean.app.state.webhook_dispatcher._receiver
    original = receiver.send

    async def spy(url: str, headers: dict[str, str], body: bytes) -> object:
        calls.append(url)
        return await original(url, headers, body)

    monkeypatch.setattr(receiver, "send", spy)
    order = await clean.place(("QB-10", 1))
    async with clean.db.fresh_sessions() as session:
        after_placing = (await session.scalars(select(WebhookDelivery.event_type).where(WebhookDelivery.endpoint_id == _pk(endpoint)))).all()
    assert after_placing == []  # placement queues nothing
    await clean.pay(order)
    await clean.fulfil()
    assert calls == []  # the requests and the fulfilment only queued the deliveries
    assert sorted(d["eventType"] for d in await clean.deliveries(endpoint)) == [
        "order.delivered", "order.paid", "order.status_changed", "order.status_changed", "order.status_changed",
    ]
    await clean.webhook_worker.run_once()
    assert calls and set(calls) == {dead_url}
    attempts = [a for d in await clean.deliveries(endpoint) for a in d["attempts"]]
    assert attempts and {(a["statusCode"], a["error"]) for a in attempts} == {(None, "ConnectError")}


async def test_redelivery_by_hand_sends_the_same_message_again(clean: Hooks, receiver: Receiver) -> None:
    endpoint = await clean.endpoint(f"{receiver.url}/again", ["order.paid"], key=clean.keys.admin)
    order = await clean.place(("QB-10", 1))
    await clean.pay(order)
    await clean.send_all()
    [delivery] = await clean.deliveries(endpoint)
    answer = await clean.gql(REDELIVER, {"id": delivery["id"]}, key=clean.keys.admin)
    assert answer == {"data": {"redeliverWebhook": {"delivery": {"status": "PENDING"}, "userErrors": []}}}
    await clean.send_all()
    first, second = receiver.at("/again")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body
    [again] = await clean.deliveries(endpoint)
    assert (again["status"], again["attemptCount"]) == ("DELIVERED", 2)
    # Another channel's partner can neither see nor resend it.
    assert (await clean.gql(REDELIVER, {"id": delivery["id"]}, key=clean.keys.taobao))["data"]["redeliverWebhook"][
        "userErrors"] == [{"code": "NOT_FOUND"}]


async def test_a_rotated_secret_signs_beside_the_old_one_for_the_grace_period(clean: Hooks, receiver: Receiver) -> None:
    endpoint = await clean.endpoint(f"{receiver.url}/rotated", ["order.paid"], key=clean.keys.admin)
    rotated = await clean.gql(ROTATE, {"id": endpoint["id"]}, key=clean.keys.admin)
    new_secret = rotated["data"]["rotateWebhookSecret"]["endpoint"]["secret"]
    order = await clean.place(("QB-10", 1))
    await clean.pay(order)
    await clean.send_all()
    [request] = receiver.at("/rotated")
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint["secret"], new_secret):
        assert Webhook(secret).verify(request.body, request.headers)["type"] == "order.paid"


async def test_an_endpoint_failing_for_the_whole_schedule_is_disabled_and_operators_are_told(
    clean: Hooks, dead_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    endpoint = await clean.endpoint(dead_url, ["order.paid"], key=clean.keys.admin)
    monkeypatch.setattr(clean.app.state.webhook_dispatcher, "_disable_after", datetime.now(UTC) - datetime.now(UTC))
    order = await clean.place(("QB-10", 1))
    await clean.pay(order)
    with caplog.at_level(logging.WARNING, logger="quanyi.webhooks"):
        await clean.send_all()
    [delivery] = await clean.deliveries(endpoint)
    assert (delivery["status"], delivery["attemptCount"]) == ("FAILED", len(dispatch.SCHEDULE) + 1)
    listed = await clean.gql("{ webhookEndpoints { id enabled disabledReason } }", key=clean.keys.admin)
    [mine] = [e for e in listed["data"]["webhookEndpoints"] if e["id"] == endpoint["id"]]
    assert mine == {"id": endpoint["id"], "enabled": False, "disabledReason": "every attempt failed for a day or more"}
    assert any("disabled" in record.getMessage() for record in caplog.records)
    metrics = await clean.http.get("/metrics", headers={"authorization": f"Bearer {clean.keys.admin}"})
    assert "quanyi_webhook_endpoints_disabled_total" in metrics.text


async def test_the_signing_secret_is_never_logged_nor_stored_in_clear(
    clean: Hooks, receiver: Receiver, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        endpoint = await clean.endpoint(f"{receiver.url}/quiet", ["order.paid"], key=clean.keys.admin)
        order = await clean.place(("QB-10", 1))
        await clean.pay(order)
        await clean.send_all()
    secret = endpoint["secret"]
    key_part = secret.removeprefix("whsec_")
    assert receiver.at("/quiet")
    logged = "\n".join(record.getMessage() + repr(record.__dict__) for record in caplog.records)
    assert key_part not in logged
    async with clean.db.fresh_sessions() as session:
        rows = (await session.execute(text("SELECT * FROM webhook_endpoint"))).all()
        deliveries = (await session.execute(text("SELECT * FROM webhook_delivery"))).all()
        jobs = (await session.execute(text("SELECT payload, last_error FROM job"))).all()
    stored = repr(rows) + repr(deliveries) + repr(jobs)
    assert key_part not in stored and key_part.encode() not in b"".join(
        bytes(cell) for row in rows for cell in row if isinstance(cell, (bytes, memoryview)))
    listed = await clean.gql("{ webhookEndpoints { secret } }", key=clean.keys.admin)
    assert {e["secret"] for e in listed["data"]["webhookEndpoints"]} == {None}


def _pk(endpoint: dict) -> int:
    from schema.relay import decode_pk
    return decode_pk(endpoint["id"], "WebhookEndpoint")


async def test_a_slow_receiver_holds_a_few_slots_and_never_the_other_receivers(clean: Hooks, receiver: Receiver) -> None:
    slow = await clean.endpoint(f"{receiver.url}/slow", ["order.paid"], key=clean.keys.admin)
    await clean.endpoint(f"{receiver.url}/fast", ["order.paid"], key=clean.keys.admin)
    for buyer in ("13912350001", "13912350002", "13912350003", "13912350004", "13912350005", "13912350006"):
        await clean.pay(await clean.place(("QB-10", 1), phone=buyer))
    receiver.gate = Gate("/slow")
    worker = asyncio.create_task(clean.webhook_worker.run())  # the worker as it runs in a gateway
    try:
        # The fast receiver gets all six while the slow one holds its first requests unanswered.
        assert await _until(lambda: len(receiver.at("/fast")) == 6)
        # The slow one fills its slots (the last may arrive just after the fast six) and never more.
        assert await _until(lambda: receiver.gate.waiting == dispatch.PER_ENDPOINT)
        await asyncio.sleep(0.3)
        assert receiver.gate.waiting == receiver.gate.most == dispatch.PER_ENDPOINT
        receiver.gate.opened.set()
        assert await _until(lambda: len(receiver.at("/slow")) == 6)
        assert await _until(lambda: _all_delivered(clean, slow))
    finally:
        receiver.gate.opened.set()
        receiver.gate = None
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker


async def _until(condition: Callable[[], object], seconds: float = 8.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        outcome = condition()
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        if outcome:
            return True
        await asyncio.sleep(0.05)
    return False


async def _all_delivered(hooks: Hooks, endpoint: dict) -> bool:
    return {d["status"] for d in await hooks.deliveries(endpoint)} == {"DELIVERED"}
