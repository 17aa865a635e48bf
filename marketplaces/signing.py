"""The open platforms' request signature (Taobao TOP, JD's 京东开放平台 alike).

Every call is a set of text parameters: the system ones (`method`, `app_key`, `timestamp` in
Beijing time, `v`, `format`, `sign_method`) and the method's own. The signature is
HMAC-SHA256, keyed with the app secret, over the parameters sorted by name and joined as
`name1value1name2value2...` (empty values left out, `sign` itself left out), in upper-case
hex. The timestamp bounds replay: a call older or newer than the tolerance is refused.
Both sides use this module: the adapter signs its calls and checks the marketplace's pushes;
the simulator checks calls and signs pushes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

from marketplaces.base import SignatureError

SIGN_METHOD = "hmac-sha256"
TOLERANCE_SECONDS = 600  # the open platforms allow ten minutes of clock difference
BEIJING = timezone(timedelta(hours=8))
_FORMAT = "%Y-%m-%d %H:%M:%S"


def timestamp(at: datetime) -> str:
    """`2026-12-06 14:30:00`: the platforms' time, in Beijing time."""
    return at.astimezone(BEIJING).strftime(_FORMAT)


def parse_time(text: str) -> datetime:
    """A platform time (Beijing) as an aware datetime; ValueError if it is not one."""
    return datetime.strptime(text.strip(), _FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)


def _key(secret: str) -> bytes:
    if not secret:
        raise ValueError("an app secret must not be empty")
    return secret.encode()


def digest(secret: str, params: Mapping[str, str]) -> str:
    text = "".join(f"{name}{params[name]}" for name in sorted(params) if name != "sign" and params[name] != "")
    return hmac.new(_key(secret), text.encode(), hashlib.sha256).hexdigest().upper()


def signed(secret: str, params: Mapping[str, str]) -> dict[str, str]:
    """`params` with `sign_method` and `sign` added."""
    values = {**params, "sign_method": SIGN_METHOD}
    values["sign"] = digest(secret, values)
    return values


def verify(
    secret: str, app_key: str, params: Mapping[str, str], now: datetime, *, tolerance_seconds: int = TOLERANCE_SECONDS,
) -> None:
    """Raise SignatureError unless `params` carry our app key, a recent timestamp and a valid
    signature. Reasons name what is wrong, never the secret or the expected signature."""
    if params.get("sign_method") != SIGN_METHOD:
        raise SignatureError(f"sign_method must be {SIGN_METHOD}")
    if not hmac.compare_digest(params.get("app_key", "").encode(), app_key.encode()):
        raise SignatureError("unknown app_key")
    try:
        at = parse_time(params.get("timestamp", ""))
    except ValueError:
        raise SignatureError("the timestamp is not yyyy-MM-dd HH:mm:ss") from None
    if abs((now - at).total_seconds()) > tolerance_seconds:
        raise SignatureError(f"the timestamp is outside the {tolerance_seconds} s tolerance")
    given = params.get("sign", "")
    if not hmac.compare_digest(digest(secret, params).encode(), given.upper().encode()):
        raise SignatureError("the signature does not match")
