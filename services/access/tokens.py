"""Order access tokens: a buyer's proof that an order is theirs, derived, never stored.

The token is an HMAC of the order number under a key derived from the secret key,
so a retried placeOrder can hand back the same token without the database ever
holding it. Tokens are issued under the current key and accepted under any key of the ring
(QUANYI_SECRET_KEYS_OLD), so a buyer's token outlives a rotation of the secret key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "qo_"


class AccessTokens:
    def __init__(self, master_key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        self._keys = [_derive(key) for key in (master_key, *old_keys)]

    def __repr__(self) -> str:
        return "AccessTokens(<key hidden>)"

    def issue(self, order_number: str) -> str:
        return f"{PREFIX}{order_number}_{self._mac(order_number)}"

    def order_number(self, token: str) -> str | None:
        """The order a token opens, or None for anything forged or malformed."""
        if not token.startswith(PREFIX):
            return None
        number, _, mac = token[len(PREFIX):].rpartition("_")
        if not number or not any(hmac.compare_digest(mac, _mac(key, number)) for key in self._keys):
            return None
        return number

    def _mac(self, order_number: str) -> str:
        return _mac(self._keys[0], order_number)


def _derive(master_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"quanyi order access v1").derive(master_key)


def _mac(key: bytes, order_number: str) -> str:
    return hmac.new(key, order_number.encode(), hashlib.sha256).hexdigest()[:40]
