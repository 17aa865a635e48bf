"""Signatures on supplier traffic: who signed, what, and when."""

from __future__ import annotations

import pytest

from suppliers import signing
from suppliers.base import SignatureError

SECRET = "shared-secret-abc"
BODY = b'{"request_id":"Q1","status":"SUCCEEDED","reference":"R1","message":""}'
NOW = 1_764_097_200


def refusal(headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> str | None:
    try:
        signing.verify(SECRET, headers, body, now)
    except SignatureError as error:
        return str(error)
    return None


def signed(value: str) -> dict[str, str]:
    return {"X-Supplier-Signature": value}


def test_the_header_carries_the_time_and_the_hmac_of_time_dot_body() -> None:
    # The same digest any HMAC-SHA256 implementation gives for "1764097200." + BODY.
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1764097200." + BODY, hashlib.sha256).hexdigest()

    assert signing.sign(SECRET, BODY, NOW + 0.9) == f"t=1764097200,v1={expected}"


def test_a_signature_is_accepted_within_the_tolerance_either_side() -> None:
    header = signed(signing.sign(SECRET, BODY, NOW))

    assert [refusal(header, now=NOW + offset) for offset in (0, 300, -300)] == [None] * 3
    assert refusal({"x-supplier-signature": header["X-Supplier-Signature"]}) is None


def test_what_cannot_be_trusted_is_refused_with_a_reason() -> None:
    good = signing.sign(SECRET, BODY, NOW)
    digest = good.split("v1=")[1]

    assert {
        "expired": refusal(signed(good), now=NOW + 301),
        "from the future": refusal(signed(good), now=NOW - 301),
        "tampered body": refusal(signed(good), BODY.replace(b"SUCCEEDED", b"FAILED")),
        "other key": refusal(signed(signing.sign("another-secret", BODY, NOW))),
        "moved timestamp": refusal(signed(f"t={NOW + 1},v1={digest}")),
        "no header": refusal({}),
        "no timestamp": refusal(signed(f"v1={digest}")),
        "no digest": refusal(signed(f"t={NOW}")),
        "bad timestamp": refusal(signed(f"t=soon,v1={digest}")),
        "other scheme": refusal(signed(f"t={NOW},v0={digest}")),
    } == {
        "expired": "the signature is outside the 300 s tolerance",
        "from the future": "the signature is outside the 300 s tolerance",
        "tampered body": "the signature does not match the body",
        "other key": "the signature does not match the body",
        "moved timestamp": "the signature does not match the body",
        "no header": "no X-Supplier-Signature header",
        "no timestamp": "the signature has no timestamp",
        "no digest": "the signature has no v1 digest",
        "bad timestamp": "the signature's timestamp is not a whole number",
        "other scheme": "the signature has no v1 digest",
    }


def test_any_of_several_digests_may_match_so_keys_can_rotate() -> None:
    old = signing.sign("old-secret", BODY, NOW).split("v1=")[1]
    new = signing.sign(SECRET, BODY, NOW).split("v1=")[1]

    assert refusal(signed(f"t={NOW},v1={old},v1={new}")) is None


def test_the_tolerance_can_be_narrowed() -> None:
    header = signed(signing.sign(SECRET, BODY, NOW))

    with pytest.raises(SignatureError, match="outside the 30 s tolerance"):
        signing.verify(SECRET, header, BODY, NOW + 31, tolerance_seconds=30)


def test_no_reason_ever_contains_the_secret_or_the_expected_digest() -> None:
    expected = signing.sign(SECRET, BODY, NOW).split("v1=")[1]
    reasons = [
        refusal(signed(f"t={NOW},v1={SECRET}")),
        refusal(signed(f"t={NOW},v1=" + "0" * 64)),
        refusal(signed(f"t={SECRET},v1={expected}")),
    ]

    assert all(r is not None and SECRET not in r and expected not in r for r in reasons)


def test_an_empty_secret_is_a_configuration_mistake() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        signing.sign("", BODY, NOW)
