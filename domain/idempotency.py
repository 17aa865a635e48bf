"""Idempotency keys: what proves that a placeOrder is a retry of one already placed.

A partner's key is its own external order number: unique in its books, sent by its servers
only, and a retry is answered with the order whenever it comes. A guest (an anonymous buyer,
or a storefront app whose key anyone can read out of the app) has no account: the key is the
one secret that proves a retry is the same buyer's, and a replay hands back the order and its
access token. So a guest's key must be hard to guess (at least GUEST_KEY_MIN_LENGTH characters:
a random one, such as a UUID) and is answered for GUEST_REPLAY_WINDOW only; after that the same
key is refused, and the buyer reads the order with the access token it already has.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.access import Principal, Role

GUEST_KEY_MIN_LENGTH = 16
GUEST_REPLAY_WINDOW = timedelta(hours=24)

GUEST_KEY_TOO_SHORT = (
    f"a guest's idempotencyKey is at least {GUEST_KEY_MIN_LENGTH} characters: send a random one, "
    "such as a UUID, and the same one with each retry"
)
REPLAY_EXPIRED = (
    "this key's order was placed more than 24 hours ago, and a guest's retry is answered for 24 hours "
    "only: read the order with its access token, or place a new order with a new key"
)


def is_guest(principal: Principal) -> bool:
    """An anonymous buyer or a storefront app: nobody who holds a secret of their own."""
    return principal.role is None or principal.role is Role.STOREFRONT


def guest_key_too_short(principal: Principal, key: str) -> bool:
    return is_guest(principal) and len(key.strip()) < GUEST_KEY_MIN_LENGTH


def replayable_since(principal: Principal, now: datetime) -> datetime | None:
    """The oldest order a retry of this caller is answered with; None: any age (partners, operators)."""
    return now - GUEST_REPLAY_WINDOW if is_guest(principal) else None
