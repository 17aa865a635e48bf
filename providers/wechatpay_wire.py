"""WeChat Pay API v3 on the wire: the signatures and the encrypted notification resource.

Pure functions shared by the adapter (providers/wechatpay.py) and the simulator, so both
sides speak one protocol:

- A request is signed with the merchant's private key over
  `METHOD\\nURL\\ntimestamp\\nnonce\\nbody\\n` (URL: path and query) and sent as
  `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"`.
- Answers and notifications are signed by WeChat Pay over `timestamp\\nnonce\\nbody\\n`, in
  `Wechatpay-Timestamp`, `Wechatpay-Nonce`, `Wechatpay-Signature`, `Wechatpay-Serial` (the
  platform key's id), checked with the platform public key, the time within five minutes.
- A notification's `resource` is AEAD_AES_256_GCM under the API v3 key, with its `nonce` and
  `associated_data`.
- `wx.requestPayment` takes `paySign`, the merchant's signature over
  `appId\\ntimeStamp\\nnonceStr\\npackage\\n`.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from providers import keys
from providers.base import NotificationRejected

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
TOLERANCE_SECONDS = 300
ALGORITHM = "AEAD_AES_256_GCM"
_AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')


def nonce() -> str:
    return secrets.token_hex(16).upper()


def request_message(method: str, url: str, timestamp: str, nonce_str: str, body: str) -> bytes:
    return f"{method}\n{url}\n{timestamp}\n{nonce_str}\n{body}\n".encode()


def authorization(mchid: str, serial_no: str, private_pem: str, method: str, url: str, body: str,
                  *, timestamp: str, nonce_str: str) -> str:
    signature = keys.sign(private_pem, request_message(method, url, timestamp, nonce_str, body))
    return (f'{SCHEMA} mchid="{mchid}",nonce_str="{nonce_str}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{serial_no}"')


def parse_authorization(value: str | None) -> dict[str, str]:
    """The fields of an Authorization header; {} when it is not this scheme."""
    if not value or not value.startswith(SCHEMA + " "):
        return {}
    return dict(_AUTH_FIELD.findall(value[len(SCHEMA) + 1:]))


def answer_message(timestamp: str, nonce_str: str, body: bytes) -> bytes:
    return timestamp.encode() + b"\n" + nonce_str.encode() + b"\n" + body + b"\n"


def signed_headers(private_pem: str, key_id: str, body: bytes, now: float) -> dict[str, str]:
    """The headers WeChat Pay puts on an answer or a notification (the simulator's side)."""
    timestamp, nonce_str = str(int(now)), nonce()
    return {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": nonce_str,
        "Wechatpay-Signature": keys.sign(private_pem, answer_message(timestamp, nonce_str, body)),
        "Wechatpay-Serial": key_id,
    }


def header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify_signed(headers: Mapping[str, str], body: bytes, public_pem: str, key_id: str, now: float,
                  tolerance: int = TOLERANCE_SECONDS) -> None:
    """Raise NotificationRejected unless WeChat Pay signed `body` with the platform key, recently."""
    timestamp = header(headers, "Wechatpay-Timestamp")
    nonce_str = header(headers, "Wechatpay-Nonce")
    signature = header(headers, "Wechatpay-Signature")
    serial = header(headers, "Wechatpay-Serial")
    if not timestamp or not nonce_str or not signature or not serial:
        raise NotificationRejected("Wechatpay-Timestamp, -Nonce, -Signature and -Serial are required")
    if serial != key_id:
        raise NotificationRejected("signed with a key this merchant does not know")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise NotificationRejected("Wechatpay-Timestamp is unix seconds")
    if abs(now - int(timestamp)) > tolerance:
        raise NotificationRejected("the timestamp is outside the accepted window")
    if len(nonce_str) > 64 or not keys.verify(public_pem, answer_message(timestamp, nonce_str, body), signature):
        raise NotificationRejected("the signature does not match")


def encrypt_resource(api_v3_key: str, plaintext: bytes, associated_data: str, original_type: str) -> dict[str, str]:
    nonce_str = secrets.token_hex(6)  # 12 characters, as WeChat Pay sends
    ciphertext = AESGCM(api_v3_key.encode()).encrypt(nonce_str.encode(), plaintext, associated_data.encode())
    return {"algorithm": ALGORITHM, "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": associated_data, "original_type": original_type, "nonce": nonce_str}


def decrypt_resource(api_v3_key: str, resource: object) -> bytes:
    if not isinstance(resource, dict) or resource.get("algorithm") != ALGORITHM:
        raise NotificationRejected(f"the resource is not {ALGORITHM}")
    nonce_str, data, ciphertext = resource.get("nonce"), resource.get("associated_data", ""), resource.get("ciphertext")
    if not isinstance(nonce_str, str) or not isinstance(data, str) or not isinstance(ciphertext, str):
        raise NotificationRejected("the resource lacks its nonce, associated_data or ciphertext")
    try:
        return AESGCM(api_v3_key.encode()).decrypt(nonce_str.encode(), base64.b64decode(ciphertext), data.encode())
    except (InvalidTag, ValueError):
        raise NotificationRejected("the resource does not decrypt under the API v3 key") from None


def pay_sign(private_pem: str, app_id: str, timestamp: str, nonce_str: str, package: str) -> str:
    return keys.sign(private_pem, f"{app_id}\n{timestamp}\n{nonce_str}\n{package}\n".encode())


def verify_pay_sign(public_pem: str, params: Mapping[str, str]) -> bool:
    """Whether `wx.requestPayment`'s parameters carry the merchant's signature (the simulator's side)."""
    try:
        message = f"{params['appId']}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n"
        return params.get("signType") == "RSA" and keys.verify(public_pem, message.encode(), params["paySign"])
    except (KeyError, TypeError):
        return False
