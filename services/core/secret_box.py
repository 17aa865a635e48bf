"""Card secrets at rest: AES-GCM encryption and a keyed digest for duplicate checks.

A key ring, so that QUANYI_SECRET_KEY can be rotated without downtime: the current key
seals, every key in the ring (the current one and QUANYI_SECRET_KEYS_OLD) opens. A sealed
secret starts with `QK1` and the sealing key's id (4 bytes derived from the key, which
reveal nothing of it), so the right key is found at once and `quanyi reseal-secrets` finds
what is still sealed under an old key. Secrets sealed before key ids existed have no
header: each key of the ring is tried on them.

The digest (duplicate detection) is keyed too: it is the current key's, and while old keys
are listed an import also looks for the digests under them (`digests`), until the
re-sealing has given every code its current digest.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12
_MARK = b"QK1"
_ID_BYTES = 4
_HEADER_BYTES = len(_MARK) + _ID_BYTES


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


class _Key:
    __slots__ = ("aead", "digest_key", "id")

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("a secret key must be 32 bytes")
        self.aead = AESGCM(_derive(master_key, b"quanyi card secret v1"))
        self.digest_key = _derive(master_key, b"quanyi card digest v1")
        self.id = _derive(master_key, b"quanyi key id v1")[:_ID_BYTES]

    def digest(self, secret: str) -> str:
        return hmac.new(self.digest_key, secret.strip().encode(), hashlib.sha256).hexdigest()


class SecretBox:
    """Encrypts secrets with a key derived from the current master key; opens what any key
    of the ring sealed; never logs them."""

    def __init__(self, master_key: bytes, old_keys: Sequence[bytes] = ()) -> None:
        self._keys = [_Key(master_key), *(_Key(key) for key in old_keys)]
        self._current = self._keys[0]
        self._by_id = {key.id: key for key in reversed(self._keys)}
        self.header = _MARK + self._current.id  # what every secret sealed now starts with

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    @property
    def rotating(self) -> bool:
        """Old keys are listed: some secrets may still be sealed under them."""
        return len(self._keys) > 1

    def seal(self, secret: str, *, context: bytes = b"") -> bytes:
        """Header, nonce, ciphertext; `context` binds it to what it belongs to (its SKU)."""
        nonce = os.urandom(_NONCE_BYTES)
        return self.header + nonce + self._current.aead.encrypt(nonce, secret.encode(), context)

    def open(self, sealed: bytes, *, context: bytes = b"") -> str:
        sealed = bytes(sealed)
        if sealed.startswith(_MARK):
            key = self._by_id.get(sealed[len(_MARK):_HEADER_BYTES])
            if key is not None:
                with_header = sealed[_HEADER_BYTES:]
                try:
                    return _decrypt(key, with_header, context)
                except InvalidTag:
                    pass  # a secret from before key ids whose nonce happens to look like a header
        for key in self._keys:  # sealed before key ids: whichever key opens it
            try:
                return _decrypt(key, sealed, context)
            except InvalidTag:
                continue
        raise InvalidTag("no key of the ring opens this secret")

    def current(self, sealed: bytes) -> bool:
        """Sealed under the current key (nothing to re-seal)."""
        return bytes(sealed).startswith(self.header)

    def digest(self, secret: str) -> str:
        """A keyed hash: equal secrets match, but the digest reveals nothing without the key."""
        return self._current.digest(secret)

    def digests(self, secret: str) -> list[str]:
        """The secret's digest under every key of the ring, the current one first."""
        return [key.digest(secret) for key in self._keys]


def _decrypt(key: _Key, sealed: bytes, context: bytes) -> str:
    nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    return key.aead.decrypt(nonce, ciphertext, context).decode()
