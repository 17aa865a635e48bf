"""HMAC-SHA256 signatures on supplier traffic, both ways: our requests and their callbacks.

The signed text is `<unix seconds>.<body>`; the header carries the time and the digest:

    X-Supplier-Signature: t=1764097200,v1=5f0c...e1

A request without a body (a GET) signs its path below the supplier's base URL instead, so
a signed query for one request cannot be replayed as a query for another. The time bounds
replay: a signature older or newer than the tolerance is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from suppliers.base import SignatureError

HEADER = "X-Supplier-Signature"
TOLERANCE_SECONDS = 300
_SCHEME = "v1"


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("a supplier secret must not be empty")
    return key


def digest(secret: str | bytes, timestamp: int, payload: bytes) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(_key(secret), signed, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, payload: bytes, now: float) -> str:
    """The header value that signs `payload` at `now` (unix seconds)."""
    timestamp = int(now)
    return f"t={timestamp},{_SCHEME}={digest(secret, timestamp, payload)}"


def header_value(headers: Mapping[str, str], name: str = HEADER) -> str | None:
    """The header whatever its case: a plain dict from a test and Starlette's Headers alike."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _parse(value: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    digests: list[str] = []
    for part in value.split(","):
        name, _, item = part.strip().partition("=")
        if name == "t":
            if not item.isascii() or not item.isdigit():
                raise SignatureError("the signature's timestamp is not a whole number")
            timestamp = int(item)
        elif name == _SCHEME:
            digests.append(item)
    if timestamp is None:
        raise SignatureError("the signature has no timestamp")
    if not digests:
        raise SignatureError(f"the signature has no {_SCHEME} digest")
    return timestamp, digests


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    payload: bytes,
    now: float,
    *,
    tolerance_seconds: int = TOLERANCE_SECONDS,
) -> None:
    """Raise SignatureError unless `payload` was signed with `secret` within the tolerance.

    Reasons name what is wrong, never the secret or the expected digest.
    """
    value = header_value(headers)
    if value is None:
        raise SignatureError(f"no {HEADER} header")
    timestamp, digests = _parse(value)
    if abs(now - timestamp) > tolerance_seconds:
        raise SignatureError(f"the signature is outside the {tolerance_seconds} s tolerance")
    expected = digest(secret, timestamp, payload)
    # Every candidate is compared in constant time; more than one v1 allows key rotation.
    matched = False
    for candidate in digests:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise SignatureError("the signature does not match the body")
