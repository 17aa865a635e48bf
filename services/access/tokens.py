"""Order access tokens: a buyer's proof that an order is theirs, derived, never stored.

The token is an HMAC of the order number under a key derived from the secret key,
so a retried placeOrder can hand back the same token without the database ever
holding it.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "qo_"


class AccessTokens:
    def __init__(self, master_key: bytes) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"quanyi order access v1").derive(master_key)

    def __repr__(self) -> str:
        return "AccessTokens(<key hidden>)"

    def issue(self, order_number: str) -> str:
        return f"{PREFIX}{order_number}_{self._mac(order_number)}"

    def order_number(self, token: str) -> str | None:
        """The order a token opens, or None for anything forged or malformed."""
        if not token.startswith(PREFIX):
            return None
        number, _, mac = token[len(PREFIX):].rpartition("_")
        if not number or not hmac.compare_digest(mac, self._mac(number)):
            return None
        return number

    def _mac(self, order_number: str) -> str:
        return hmac.new(self._key, order_number.encode(), hashlib.sha256).hexdigest()[:40]
