"""Alipay's open platform on the wire: RSA2 (SHA256withRSA) over the sorted `k=v&…` string.

Pure functions shared by the adapter (providers/alipay.py) and the simulator:

- A request's parameters (biz_content a JSON string among them) are signed by the app's
  private key over every non-empty parameter except `sign`, sorted by name, joined as
  `k=v&k=v` with the values as they are (not URL-encoded).
- An answer is `{"<method>_response": {…}, "sign": "…"}`, signed by Alipay over the exact
  text of the `…_response` object.
- An asynchronous notification is a form, signed by Alipay over every non-empty field except
  `sign` and `sign_type`, the same way; the merchant answers the text `success` once it is
  handled, and Alipay retries until then.
- Amounts are yuan written as decimal strings ("19.80"): converted to fen exactly here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

from providers import keys

CHINA = timezone(timedelta(hours=8))
_YUAN = re.compile(r"(0|[1-9][0-9]{0,10})(?:\.([0-9]{1,2}))?")


def content(params: Mapping[str, str], *, exclude: tuple[str, ...] = ("sign",)) -> bytes:
    pairs = sorted((k, v) for k, v in params.items() if k not in exclude and v != "" and v is not None)
    return "&".join(f"{k}={v}" for k, v in pairs).encode()


def sign(private_pem: str, params: Mapping[str, str]) -> str:
    return keys.sign(private_pem, content(params))


def verify_request(public_pem: str, params: Mapping[str, str]) -> bool:
    """A request's `sign` (the simulator checks the merchant's requests this way)."""
    return keys.verify(public_pem, content(params), params.get("sign", ""))


def verify_notification(public_pem: str, form: Mapping[str, str]) -> bool:
    return keys.verify(public_pem, content(form, exclude=("sign", "sign_type")), form.get("sign", ""))


def timestamp(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def fen(text: str | None) -> int | None:
    """Yuan as Alipay writes them, in fen exactly; None if it is not such a number."""
    match = _YUAN.fullmatch(text or "")
    if match is None:
        return None
    whole, cents = match.group(1), (match.group(2) or "").ljust(2, "0")
    return int(whole) * 100 + int(cents)


def response_text(body: str, key: str) -> str | None:
    """The exact text of the `key` object in an answer: what Alipay signed."""
    start = body.find(f'"{key}":')
    end = body.rfind(',"sign":')
    if start < 0 or end < 0 or end < start:
        return None
    return body[start + len(key) + 3:end].strip()
