"""The key ring behind card secrets: the current key seals, every listed key opens."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.core.secret_box import SecretBox, _derive
from tests.support import new_secret_key


def _sealed_before_key_ids(master: bytes, secret: str, context: bytes) -> bytes:
    """What SecretBox.seal wrote before sealed secrets carried their key's id."""
    nonce = os.urandom(12)
    return nonce + AESGCM(_derive(master, b"quanyi card secret v1")).encrypt(nonce, secret.encode(), context)


def test_a_secret_sealed_under_an_old_key_opens_while_that_key_is_listed_and_not_after() -> None:
    old, new = new_secret_key(), new_secret_key()
    sealed = SecretBox(old).seal("CARD-0001", context=b"7")
    legacy = _sealed_before_key_ids(old, "CARD-0002", b"7")

    ring = SecretBox(new, [old])
    assert (ring.open(sealed, context=b"7"), ring.open(legacy, context=b"7")) == ("CARD-0001", "CARD-0002")
    assert (ring.current(sealed), ring.current(ring.seal("CARD-0003", context=b"7"))) == (False, True)
    with pytest.raises(InvalidTag):
        SecretBox(new).open(sealed, context=b"7")
    with pytest.raises(InvalidTag):  # still bound to its SKU
        ring.open(sealed, context=b"8")


def test_a_sealed_secret_names_its_key_by_an_id_that_reveals_nothing_of_it() -> None:
    key = new_secret_key()
    box = SecretBox(key)
    sealed = box.seal("CARD-0001")
    assert sealed.startswith(box.header) and len(box.header) == 7
    assert key[:4] not in box.header and b"CARD" not in sealed


def test_during_a_rotation_a_secret_has_a_digest_under_every_listed_key() -> None:
    old, new = new_secret_key(), new_secret_key()
    ring = SecretBox(new, [old])
    assert ring.digests("CARD-0001") == [SecretBox(new).digest("CARD-0001"), SecretBox(old).digest("CARD-0001")]
    assert (ring.rotating, SecretBox(new).rotating) == (True, False)


def test_a_buyers_order_token_outlives_a_rotation_until_its_key_is_retired() -> None:
    from services.access.tokens import AccessTokens

    old, new = new_secret_key(), new_secret_key()
    token = AccessTokens(old).issue("Q20261206000001")
    assert AccessTokens(new, [old]).order_number(token) == "Q20261206000001"
    assert AccessTokens(new, [old]).issue("Q20261206000001") == AccessTokens(new).issue("Q20261206000001")
    assert AccessTokens(new).order_number(token) is None
