"""Aliyun SMS's wire rules (API version 2017-05-25): the RPC request signature and SendSms's parameters.

Every parameter percent-encoded (RFC 3986, `~` kept), sorted by name and joined with `&`; the
string to sign is `POST&%2F&` and that query encoded again; the signature is HMAC-SHA1 under
`AccessKeySecret&`, in base64. Used by the sender (services/fulfilment/aliyun_sms.py) and the
simulator (suppliers/sms_sim.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

API_VERSION = "2017-05-25"


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
