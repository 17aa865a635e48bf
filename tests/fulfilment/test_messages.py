"""Codes reach the buyer through real providers: by e-mail over SMTP (a local server) and by SMS
through Aliyun's signed SendSms (a simulator that checks what Aliyun checks); the code is in the
buyer's message and nowhere else, and a forged, replayed or stale request sends nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from typing import Any

import httpx
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager

from config import Settings
from gateway import create_app
from services.core.database import Database
from services.fulfilment.aliyun_sms import AliyunSmsSender, SmsRefused
from suppliers.aliyun_sms_wire import send_sms_params, signature
from services.fulfilment.senders import Message
from suppliers.sms_sim import SmsSimulator
from tests.e2e.server import free_port
from tests.fulfilment.conftest import Fulfilling
from tests.fulfilment.fakes import FakeSupplier
from tests.graphql.conftest import Keys
from tests.support import GraphQLClient

KEY_ID, SECRET, SIGN, TEMPLATE = "LTAI5tSimulated", "aliyun-secret-for-tests", "权益商城", "SMS_4711"
CODES = "query Codes($id: ID!) { order(id: $id) { lines { codes(reveal: true) { number secret } } } }"


class Inbox:
    """What the local SMTP server received."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        mail = message_from_bytes(envelope.content, policy=policy.default)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), mail.get_body().get_content()))
        return "250 OK"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@contextlib.asynccontextmanager
async def sms_service() -> AsyncIterator[tuple[SmsSimulator, str]]:
    simulator = SmsSimulator(KEY_ID, SECRET, {SIGN}, {TEMPLATE: "您的订单${order}已发货，卡密：${codes}"})
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(simulator.app(), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        yield simulator, f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        await task


@dataclass
class Messaging:
    shop: Fulfilling
    sms: SmsSimulator
    sms_url: str
    inbox: Inbox


@pytest.fixture(scope="module")
async def messaging(settings: Settings, db: Database, keys: Keys, demo: Any) -> AsyncIterator[Messaging]:
    with smtp_server() as (inbox, smtp_port):
        async with sms_service() as (sms, url):
            configured = replace(
                settings, worker=False, aliyun_sms_key_id=KEY_ID, aliyun_sms_secret=SECRET, aliyun_sms_sign_name=SIGN,
                aliyun_sms_template=TEMPLATE, aliyun_sms_endpoint=url, smtp_host="127.0.0.1", smtp_port=smtp_port,
                smtp_starttls=False, smtp_from="orders@shop.example",
            )
            fakes = {"sim-fast": FakeSupplier("sim-fast"), "sim-backup": FakeSupplier("sim-backup")}
            app = create_app(configured)
            async with LifespanManager(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as http:
                    shop = Fulfilling(GraphQLClient(http), http, app.state.worker, db, keys, fakes, demo,
                                      app.state.broker, app)
                    yield Messaging(shop, sms, url, inbox)


async def test_a_paid_code_reaches_the_buyer_by_sms_and_email_and_nowhere_else(
    messaging: Messaging, caplog: pytest.LogCaptureFixture
) -> None:
    shop = messaging.shop
    sent_before, mails_before = len(messaging.sms.sent), len(messaging.inbox.mails)
    caplog.set_level(logging.DEBUG)
    order = await shop.place(("QB-10", 1), phone="+86 139 0000 1111", email="Buyer@Example.cn")
    assert await shop.pay(order) == "PAID"
    await shop.settle()

    status = await shop.status(order)
    code = (await shop.gql(CODES, {"id": order["id"]}, key=shop.keys.admin))["data"]["order"]["lines"][0]["codes"][0]
    sms = messaging.sms.sent[sent_before:]
    mails = messaging.inbox.mails[mails_before:]

    assert status["status"] == "DELIVERED"
    assert sorted((d["channel"], d["status"]) for d in status["lines"][0]["deliveries"]) == [
        ("EMAIL", "SENT"), ("INBOX", "SENT"), ("SMS", "SENT")
    ]
    assert [(m.phone, m.sign_name, m.template_code, m.params["order"]) for m in sms] == [
        ("13900001111", SIGN, TEMPLATE, order["number"])
    ]
    assert code["secret"] in sms[0].params["codes"] and sms[0].text.startswith(f"【{SIGN}】您的订单{order['number']}已发货")
    # Two mails: the line's codes, and the order's notice that carries none.
    assert [(sender, to) for sender, to, _ in mails] == [("orders@shop.example", ["buyer@example.cn"])] * 2
    assert sorted(code["secret"] in body for _, _, body in mails) == [False, True]
    # Nothing the gateway logged holds it (the test's own SMTP server logs what it receives).
    assert not [r for r in caplog.records if not r.name.startswith("mail.log") and code["secret"] in r.getMessage()]


def message(codes: list[str]) -> Message:
    return Message(order_id=1, order_number="Q20260606000001", line_id=1, subject="您的卡密", body="已发货",
                   phone="13900001111", codes=codes)


def sender(url: str, **changes: str) -> AliyunSmsSender:
    given = {"key_id": KEY_ID, "secret": SECRET, "sign_name": SIGN, "template_code": TEMPLATE, **changes}
    return AliyunSmsSender(endpoint=url, **given)


async def test_a_forged_request_is_refused_and_names_no_code(messaging: Messaging) -> None:
    before = len(messaging.sms.sent)
    refusals = []
    for changes in ({"secret": "guessed"}, {"key_id": "LTAIsomeoneelse"}, {"sign_name": "未备案签名"},
                    {"template_code": "SMS_0000"}):
        with pytest.raises(SmsRefused) as refused:
            await sender(messaging.sms_url, **changes).send(None, message(["CARD-SECRET-1234"]))  # type: ignore[arg-type]
        refusals.append(str(refused.value).rsplit(", ", 1)[-1])
        assert "CARD-SECRET-1234" not in str(refused.value)

    assert refusals == ["SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound", "isv.SMS_SIGNATURE_ILLEGAL",
                        "isv.SMS_TEMPLATE_ILLEGAL"]
    assert len(messaging.sms.sent) == before


async def test_a_replayed_or_stale_request_sends_nothing(messaging: Messaging) -> None:
    before = len(messaging.sms.sent)

    def signed(at: datetime, nonce: str, **params: str) -> dict[str, str]:
        found = send_sms_params(key_id=KEY_ID, phone="13900001111", sign_name=SIGN, template_code=TEMPLATE,
                                template_param={"order": "Q1", "codes": "X"}, now=at, nonce=nonce)
        found.update(params)
        found["Signature"] = signature(found, SECRET)
        return found

    fresh = signed(datetime.now(UTC), uuid.uuid4().hex)
    async with httpx.AsyncClient() as client:
        first = (await client.post(messaging.sms_url, data=fresh)).json()["Code"]
        replayed = (await client.post(messaging.sms_url, data=fresh)).json()["Code"]
        stale = (await client.post(messaging.sms_url, data=signed(datetime.now(UTC) - timedelta(hours=1),
                                                                    uuid.uuid4().hex))).json()["Code"]
        tampered = dict(signed(datetime.now(UTC), uuid.uuid4().hex), PhoneNumbers="13900002222")
        moved = (await client.post(messaging.sms_url, data=tampered)).json()["Code"]
        missing = signed(datetime.now(UTC), uuid.uuid4().hex, TemplateParam='{"order":"Q1"}')
        incomplete = (await client.post(messaging.sms_url, data=missing)).json()["Code"]

    assert (first, replayed, stale, moved, incomplete) == (
        "OK", "SignatureNonceUsed", "InvalidTimeStamp.Expired", "SignatureDoesNotMatch", "isv.TEMPLATE_MISSING_PARAMETERS"
    )
    assert len(messaging.sms.sent) == before + 1
