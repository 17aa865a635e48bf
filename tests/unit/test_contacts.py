"""A buyer's contact in one canonical form: the spellings people type are one phone, one address, one device."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.contacts import (
    MOBILE,
    ContactError,
    device_key,
    email_address,
    email_key,
    mainland_mobile,
    phone_key,
)


@pytest.mark.parametrize("typed", [
    "15899990000", "+8615899990000", "8615899990000", "008615899990000",
    "158 9999 0000", "158-9999-0000", "+86 158 9999 0000", "+86-158-9999-0000", "0086 158 9999 0000",
    " 15899990000 ", "+ 86 15899990000", "\u00a0158\u00a09999\u00a00000", "158\u30009999\u30000000",  # no-break, ideographic space
    "１５８９９９９００００", "＋８６１５８９９９９００００", "158－9999－0000", "158\u20149999\u20140000",  # full width, em dash
])
def test_every_spelling_people_type_is_the_national_number(typed: str) -> None:
    assert mainland_mobile(typed) == "15899990000"


@pytest.mark.parametrize("typed", [
    "", " ", "12345", "1589999000", "158999900000",  # too short, too long
    "12012345678", "10012345678", "11012345678", "25899990000",  # not a mobile range
    "+85291234567", "+1 415 555 0100", "+441234567890", "+8612012345678",  # not the mainland, or not a mobile
    "+15899990000", "86158999900", "+86158999900001", "0086158999900", "00861589999000",  # a country code that does not fit
    "++8615899990000", "+0086 15899990000", "8686 15899990000",
    "158.9999.0000", "(158) 9999 0000", "158_9999_0000", "158/9999/0000", "tel:15899990000",  # other separators
    "1589999000O", "١٥٨٩٩٩٩٠٠٠٠", "15899990000x", "15899990000\x00",  # letters, Arabic-Indic digits, control characters
    "1" + " " * 70 + "5899990000",  # longer than anyone types
])
def test_anything_else_is_refused_with_the_same_clear_message(typed: str) -> None:
    with pytest.raises(ContactError, match="mainland China mobile number is 11 digits starting 13 to 19"):
        mainland_mobile(typed)


nationals = st.from_regex(MOBILE, fullmatch=True)
FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")


@st.composite
def spellings(draw: st.DrawFn) -> tuple[str, str]:
    """A national number and one way a person might type it."""
    national = draw(nationals)
    prefix = draw(st.sampled_from(["", "+86", "86", "0086", "+86 ", "0086-", "+86-"]))
    separators = st.sampled_from(["", "", "", " ", "-", "  ", " - ", "\u3000", "\u2010", "\t"])
    typed = prefix + "".join(digit + draw(separators) for digit in national)
    if draw(st.booleans()):
        typed = typed.translate(FULL_WIDTH)
    return national, draw(separators) + typed + draw(separators)


@given(spellings())
def test_any_spelling_of_a_mobile_number_is_that_number(spelled: tuple[str, str]) -> None:
    national, typed = spelled
    assert mainland_mobile(typed) == national
    assert phone_key(typed) == national


@given(st.text(max_size=40))
def test_anything_accepted_is_an_ascii_mobile_number_that_stays_itself(text: str) -> None:
    try:
        national = mainland_mobile(text)
    except ContactError:
        return
    assert MOBILE.fullmatch(national) and national.isascii()
    assert mainland_mobile(national) == national


@given(st.text(alphabet="0123456789", min_size=1, max_size=20).filter(lambda d: len(d) not in (11, 13, 15)))
def test_digits_of_no_possible_length_are_refused(digits: str) -> None:
    with pytest.raises(ContactError):
        mainland_mobile(digits)


@given(st.text(max_size=200))
def test_the_risk_key_of_a_phone_never_fails_and_is_stable(text: str) -> None:
    key = phone_key(text)
    assert phone_key(key) == key


def test_the_risk_key_of_a_foreign_or_malformed_phone_is_its_compact_spelling() -> None:
    # Facts and blacklists written before phones were checked still compare with themselves.
    assert [phone_key(t) for t in ("+852 9123-4567", "12345", " 1 2 3 ")] == ["+85291234567", "12345", "123"]


@pytest.mark.parametrize(("typed", "address"), [
    ("li@example.cn", "li@example.cn"), ("Li@Example.CN", "li@example.cn"), ("  li@example.cn\t", "li@example.cn"),
    ("LI.WEI+shop@QQ.com", "li.wei+shop@qq.com"),
])
def test_an_email_address_is_trimmed_and_in_lower_case(typed: str, address: str) -> None:
    assert email_address(typed) == address == email_key(typed)


@pytest.mark.parametrize("typed", ["", "li", "li@example", "li@@example.cn", "li wei@example.cn", "@example.cn"])
def test_what_is_no_email_address_is_refused(typed: str) -> None:
    with pytest.raises(ContactError, match="not an email address"):
        email_address(typed)


@given(st.emails())
def test_any_case_and_padding_of_an_address_is_one_address(address: str) -> None:
    assert email_key(f"  {address.upper()} ") == email_key(address.lower()) == email_key(email_key(address))


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=40))
def test_a_device_id_is_one_device_in_any_case_and_padding(device: str) -> None:
    assert device_key(f" {device.upper()}\n") == device_key(device.lower()) == device_key(device_key(device))
