"""Codes by SMS through Aliyun's SMS service (阿里云短信, API version 2017-05-25, SendSms).

The request is signed as Aliyun's RPC APIs are: every parameter percent-encoded (RFC 3986,
`~` kept), sorted by name and joined; the string to sign is `POST&%2F&` and that query, encoded
again; the signature is HMAC-SHA1 under `AccessKeySecret&`, in base64. A fresh
`SignatureNonce` and the UTC `Timestamp` make a captured request useless to replay.
Written by hand with `hmac` (a dozen lines) rather than Aliyun's SDK, which pulls in its whole
Tea runtime for one call; `suppliers/sms_sim.py` checks the same signature from the other side.

The message is a template Aliyun approved (`TemplateCode`, e.g. "您的订单${order}已发货，卡密：${codes}")
under an approved `SignName`; the codes are template parameters, sent only to Aliyun over TLS
and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.fulfilment.senders import SMS, Message

API_VERSION = "2017-05-25"
DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"


class SmsRefused(RuntimeError):
    """Aliyun (or its simulator) answered with a code other than OK; the message names it, never the text."""


def encode(text: str) -> str:
    return quote(text, safe="~")


def string_to_sign(params: Mapping[str, str], method: str = "POST") -> str:
    query = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()))
    return f"{method}&{encode('/')}&{encode(query)}"


def signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(params, method).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def send_sms_params(
    *, key_id: str, phone: str, sign_name: str, template_code: str, template_param: Mapping[str, str],
    now: datetime, nonce: str,
) -> dict[str, str]:
    return {
        "AccessKeyId": key_id, "Action": "SendSms", "Format": "JSON", "PhoneNumbers": phone,
        "RegionId": "cn-hangzhou", "SignName": sign_name, "SignatureMethod": "HMAC-SHA1", "SignatureNonce": nonce,
        "SignatureVersion": "1.0", "TemplateCode": template_code,
        "TemplateParam": json.dumps(dict(template_param), ensure_ascii=False, separators=(",", ":")),
        "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": API_VERSION,
    }


class AliyunSmsSender:
    channel = SMS
    local = False

    def __init__(self, *, key_id: str, secret: str, sign_name: str, template_code: str,
                 endpoint: str = DEFAULT_ENDPOINT, timeout: float = 5.0) -> None:
        self._key_id, self._secret = key_id, secret
        self._sign_name, self._template = sign_name, template_code
        self._endpoint, self._timeout = endpoint, timeout

    def accepts(self, message: Message) -> bool:
        # The approved template carries a line's codes: an order's summary notice (no line, no
        # codes) goes to the inbox and e-mail, not as an SMS with an empty code.
        return bool(message.phone) and message.line_id is not None

    async def send(self, session: AsyncSession, message: Message) -> None:
        params = send_sms_params(
            key_id=self._key_id, phone=message.phone or "", sign_name=self._sign_name, template_code=self._template,
            template_param={"order": message.order_number, "codes": "; ".join(message.codes)},
            now=datetime.now(UTC), nonce=uuid.uuid4().hex,
        )
        params["Signature"] = signature(params, self._secret)
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            response = await client.post(self._endpoint, data=params)
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or answer.get("Code") != "OK":
            raise SmsRefused(f"Aliyun SMS refused the message for order {message.order_number}: "
                             f"HTTP {response.status_code}, {str(answer.get('Code'))[:64]}")
