"""Operator alerts to chat groups: WeCom (企业微信) and DingTalk (钉钉) group robots.

WeCom's robot takes `{"msgtype": "markdown", "markdown": {"content": …}}` at its webhook URL (the
key is in the URL). DingTalk's takes `{"msgtype": "markdown", "markdown": {"title", "text"}}`; with
its "加签" security setting the URL carries `timestamp` (milliseconds) and `sign`, the base64 of
HMAC-SHA256 over `timestamp\\nsecret` under the secret, URL-encoded. A robot answers `errcode` 0
when it took the message. Both are a few lines over httpx: their SDKs add nothing here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, Protocol
from urllib.parse import quote_plus

import httpx

from services.analytics.dashboard import Alert

KINDS = {
    "TOPUP_WAITING": "直充等待供应商", "OUT_OF_STOCK": "售罄", "LOW_STOCK": "库存不足",
    "SUPPLIER_FAILING": "供应商故障", "REVIEW_QUEUE": "待审核订单",
}


class RobotRefused(RuntimeError):
    pass


class Robot(Protocol):
    name: str

    async def post(self, title: str, text: str) -> None: ...


def describe(alert: Alert, *, cleared: bool = False) -> tuple[str, str]:
    """(title, markdown) of one alert, in the operators' language."""
    what = KINDS.get(alert.kind, alert.kind)
    subject = " ".join(part for part in (alert.subject, alert.name) if part)
    level = "已恢复" if cleared else ("严重" if alert.severity == "CRITICAL" else "警告")
    title = f"[{level}] {what}" + (f"：{subject}" if subject else "")
    return title, f"### {title}\n- 数量：{alert.count}\n- 类型：{alert.kind}"


async def _post_json(url: str, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(timeout=5.0, follow_redirects=False) as client:
        response = await client.post(url, json=body)
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code != 200 or answer.get("errcode") != 0:
        raise RobotRefused(f"HTTP {response.status_code}, errcode {answer.get('errcode')!r}")


class WeComRobot:
    name = "wecom"

    def __init__(self, url: str) -> None:
        self._url = url

    async def post(self, title: str, text: str) -> None:
        await _post_json(self._url, {"msgtype": "markdown", "markdown": {"content": text}})


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


class DingTalkRobot:
    name = "dingtalk"

    def __init__(self, url: str, secret: str = "") -> None:
        self._url, self._secret = url, secret

    async def post(self, title: str, text: str) -> None:
        url = self._url
        if self._secret:
            now = int(time.time() * 1000)
            url += ("&" if "?" in url else "?") + f"timestamp={now}&sign={dingtalk_sign(self._secret, now)}"
        await _post_json(url, {"msgtype": "markdown", "markdown": {"title": title, "text": text}})
