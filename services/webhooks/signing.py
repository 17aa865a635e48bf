"""Standard Webhooks signatures (https://www.standardwebhooks.com), written out because the
scheme is three lines and the gateway then needs no client library at run time.

The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is
HMAC-SHA256 under the base64-decoded part of the `whsec_…` secret, sent as `v1,<base64>`.
While a rotated-out secret is still honoured, `webhook-signature` carries one signature per
secret, separated by spaces: a receiver verifies with whichever it holds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence

PREFIX = "whsec_"
SECRET_BYTES = 24


def new_secret() -> str:
    return PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with each of `secrets` (current first)."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(secret, message_id, timestamp, body) for secret in secrets),
        "content-type": "application/json",
    }
