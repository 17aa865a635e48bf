"""Operator alerts reach the WeCom and DingTalk group robots: once when raised, once when cleared,
whatever the number of gateways; DingTalk's signature checked as DingTalk checks it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.analytics.alerting import tell_once
from services.analytics.robots import DingTalkRobot, WeComRobot
from tests.e2e.server import free_port
from tests.e2e.shop import Shop, StockedSku, open_shop, order_input

SECRET = "SECdingtalk-robot-secret"
PLACE = "mutation P($input: PlaceOrderInput!) { placeOrder(input: $input) { order { id status } } }"
REVIEW = "mutation R($id: ID!) { reviewOrder(orderId: $id, decision: PASS) { order { status } } }"


@dataclass
class Groups:
    """A WeCom and a DingTalk robot endpoint, recording what they accepted."""

    wecom: list[dict[str, Any]] = field(default_factory=list)
    dingtalk: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0

    async def wecom_send(self, request: Request) -> JSONResponse:
        if request.query_params.get("key") != "wecom-key":
            return JSONResponse({"errcode": 93000, "errmsg": "invalid webhook url"})
        self.wecom.append(await request.json())
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def dingtalk_send(self, request: Request) -> JSONResponse:
        stamp, sign = request.query_params.get("timestamp", ""), request.query_params.get("sign", "")
        expected = base64.b64encode(hmac.new(SECRET.encode(), f"{stamp}\n{SECRET}".encode(), hashlib.sha256).digest()).decode()
        fresh = stamp.isdigit() and abs(time.time() * 1000 - int(stamp)) < 3_600_000
        if not fresh or not hmac.compare_digest(sign, expected):
            self.refused += 1
            return JSONResponse({"errcode": 310000, "errmsg": "sign not match"})
        self.dingtalk.append(await request.json())
        return JSONResponse({"errcode": 0, "errmsg": "ok"})


@pytest.fixture(scope="module")
async def robots() -> AsyncIterator[tuple[Groups, str]]:
    groups = Groups()
    app = Starlette(routes=[Route("/cgi-bin/webhook/send", groups.wecom_send, methods=["POST"]),
                            Route("/robot/send", groups.dingtalk_send, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield groups, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("robots")) as opened:
        yield opened


@pytest.fixture(scope="module")
async def coins(shop: Shop) -> StockedSku:
    return await shop.shelf.card_codes(20, price_fen=1000)


async def test_an_alert_is_told_once_when_raised_and_once_when_cleared(
    shop: Shop, coins: StockedSku, robots: tuple[Groups, str]
) -> None:
    groups, base = robots
    told = [WeComRobot(f"{base}/cgi-bin/webhook/send?key=wecom-key"), DingTalkRobot(f"{base}/robot/send?access_token=t", SECRET)]
    await tell_once(shop.db, told, now=datetime.now(UTC))  # what stands already is told first
    before = (len(groups.wecom), len(groups.dingtalk))

    held = await shop.gql(PLACE, {"input": order_input((coins, 1), buyer={"phone": "17012345678"})})  # a 170 number: REVIEW
    assert held["data"]["placeOrder"]["order"]["status"] == "REVIEW"
    # Two gateways at once: one tells it.
    await asyncio.gather(*(tell_once(shop.db, told, now=datetime.now(UTC)) for _ in range(2)))
    await tell_once(shop.db, told, now=datetime.now(UTC))
    raised = (groups.wecom[before[0]:], groups.dingtalk[before[1]:])
    await shop.gql(REVIEW, {"id": held["data"]["placeOrder"]["order"]["id"]}, key=shop.keys.admin)
    await tell_once(shop.db, told, now=datetime.now(UTC))

    assert [m["markdown"]["content"].splitlines()[0] for m in raised[0]] == ["### [警告] 待审核订单"]
    assert [m["markdown"]["title"] for m in raised[1]] == ["[警告] 待审核订单"]
    assert groups.wecom[-1]["markdown"]["content"].startswith("### [已恢复] 待审核订单")
    assert groups.dingtalk[-1]["markdown"]["title"] == "[已恢复] 待审核订单"
    assert len(groups.wecom) == before[0] + 2 and len(groups.dingtalk) == before[1] + 2


async def test_a_robot_that_refuses_does_not_keep_the_others_from_hearing(
    shop: Shop, coins: StockedSku, robots: tuple[Groups, str], caplog: pytest.LogCaptureFixture
) -> None:
    groups, base = robots
    forged = DingTalkRobot(f"{base}/robot/send?access_token=t", "SECsomeone-elses-secret")
    wecom = WeComRobot(f"{base}/cgi-bin/webhook/send?key=wecom-key")
    await tell_once(shop.db, [forged, wecom], now=datetime.now(UTC))
    refused, heard = groups.refused, len(groups.wecom)

    await shop.gql(PLACE, {"input": order_input((coins, 1), buyer={"phone": "17012345679"})})
    await tell_once(shop.db, [forged, wecom], now=datetime.now(UTC))

    assert groups.refused == refused + 1 and len(groups.wecom) == heard + 1
    assert "the dingtalk robot did not take an alert" in caplog.text
    assert "someone-elses-secret" not in caplog.text and "sign=" not in caplog.text
