"""A buyer's phone, e-mail and device ID in one canonical form.

A buyer is one buyer however the contact is typed: `+86 158-9999-0000`, `008615899990000`
and `15899990000` are one number, `Li@Example.cn ` and `li@example.cn` one address, `ABC-1`
and `abc-1` one device. Orders store these forms, the risk check counts and lists them, and
an idempotent retry is compared in them.

Phones are mainland China mobile numbers only: 11 digits, 13 to 19 first. Codes and
top-ups are delivered by SMS through domestic gateways and the risk rules (virtual-operator
segments among them) are written for the mainland numbering plan; a buyer without such a
number gives an e-mail address instead.
"""

from __future__ import annotations

import re
import unicodedata

MOBILE = re.compile(r"1[3-9][0-9]{9}")
# What people put between digits: spaces (also the ideographic one, which NFKC makes a space) and dashes.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]+")
_COUNTRY = re.compile(r"(?:\+86|0086|86)(?=[0-9]{11}$)")
_NOT_DIALLED = re.compile(r"[^0-9+]")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}")
MAX_TYPED = 64  # longer input is refused before any normalising work


class ContactError(ValueError):
    """A contact that is not what it claims to be; the message is for the buyer."""


NOT_A_MOBILE = (
    "a mainland China mobile number is 11 digits starting 13 to 19, as in 138 0013 8000 or +86 138 0013 8000;"
    " without one, give an email address"
)


def _compact(text: str) -> str:
    """Full-width digits and signs as ASCII, separators gone."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", text))


def mainland_mobile(text: str) -> str:
    """The 11-digit national number, from the forms people type; ContactError otherwise.

    Accepted around the number: spaces and dashes anywhere, full-width digits, and the country
    code as `+86`, `0086` or `86` (the last only before all eleven digits).
    """
    if len(text) > MAX_TYPED:
        raise ContactError(NOT_A_MOBILE)
    if MOBILE.fullmatch(text):
        return text  # already the national number (no separators, no country code to take off)
    compact = _compact(text)
    national = _COUNTRY.sub("", compact, count=1) if _COUNTRY.match(compact) else compact
    if not MOBILE.fullmatch(national):
        raise ContactError(NOT_A_MOBILE)
    return national


def phone_key(text: str) -> str:
    """The form a phone is counted and listed under: the national number when it is one.

    Never raises: facts and rules written before phones were checked still compare with what
    they were written as, by their digits (and a leading plus) alone.
    """
    try:
        return mainland_mobile(text)
    except ContactError:
        return _NOT_DIALLED.sub("", unicodedata.normalize("NFKC", text[:MAX_TYPED]))


def email_address(text: str) -> str:
    """An e-mail address trimmed and in lower case; ContactError when it is not one.

    The local part is case-sensitive by the letter of RFC 5321, never in practice: every
    mailbox provider a buyer uses ignores case, and a bot must not get a fresh identity by
    capitalising a letter.
    """
    address = email_key(text)
    if not _EMAIL.fullmatch(address):
        raise ContactError("not an email address")
    return address


def email_key(text: str) -> str:
    return text.strip().lower()


def device_key(text: str) -> str:
    """Device IDs (IDFA, Android ID, a storefront's fingerprint) compared without case or padding."""
    return text.strip().lower()


# A mobile number inside free text (a log line, an error), in the forms people write it.
_MOBILE_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[ -]?)?(1[3-9][0-9])[ -]?([0-9]{4})[ -]?([0-9]{4})(?![0-9])")
_EMAIL_IN_TEXT = re.compile(r"(?<![\w.%+-])([\w.%+-])[\w.%+-]*@([\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,})")


def mask_contacts(text: str) -> str:
    """Text with every mobile number and e-mail address in it masked: `138****8000`, `l***@example.cn`.

    Enough to tell two buyers apart in a log, not enough to reach either.
    """
    if "@" in text:
        text = _EMAIL_IN_TEXT.sub(r"\1***@\2", text)
    return _MOBILE_IN_TEXT.sub(r"\1****\3", text)
