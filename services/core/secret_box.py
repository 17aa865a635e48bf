"""Card secrets at rest: AES-GCM encryption and a keyed digest for duplicate checks."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE_BYTES = 12


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


class SecretBox:
    """Encrypts secrets with a key derived from the master key; never logs them."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(_derive(master_key, b"quanyi card secret v1"))
        self._digest_key = _derive(master_key, b"quanyi card digest v1")

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, secret: str, *, context: bytes = b"") -> bytes:
        """Nonce followed by ciphertext; `context` binds it to its SKU."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), context)

    def open(self, sealed: bytes, *, context: bytes = b"") -> str:
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, context).decode()

    def digest(self, secret: str) -> str:
        """A keyed hash: equal secrets match, but the digest reveals nothing without the key."""
        normalised = secret.strip().encode()
        return hmac.new(self._digest_key, normalised, hashlib.sha256).hexdigest()
