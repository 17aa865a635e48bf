"""Codes by SMS through Aliyun's SMS service (阿里云短信, API version 2017-05-25, SendSms).

The request is signed as Aliyun's RPC APIs are: every parameter percent-encoded (RFC 3986,
`~` kept), sorted by name and joined; the string to sign is `POST&%2F&` and that query, encoded
again; the signature is HMAC-SHA1 under `AccessKeySecret&`, in base64. A fresh
`SignatureNonce` and the UTC `Timestamp` make a captured request useless to replay.
Written by hand with `hmac` (a dozen lines) rather than Aliyun's SDK, which pulls in its whole
Tea runtime for one call. The wire rules are `suppliers/aliyun_sms_wire.py`, shared with the
simulator (`suppliers/sms_sim.py`), which checks the same signature from the other side.

The message is a template Aliyun approved (`TemplateCode`, e.g. "您的订单${order}已发货，卡密：${codes}")
under an approved `SignName`; the codes are template parameters, sent only to Aliyun over TLS
and never logged.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from services.fulfilment.senders import SMS, Message
from suppliers.aliyun_sms_wire import send_sms_params, signature

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"


class SmsRefused(RuntimeError):
    """Aliyun (or its simulator) answered with a code other than OK; the message names it, never the text."""


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
