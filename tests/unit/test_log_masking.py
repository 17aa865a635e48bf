"""Log lines never show a buyer's phone number or e-mail address in clear, whoever logged them."""

from __future__ import annotations

import logging
import sys

import orjson
import pytest

from config import log_settings
from services.core.logs import ContactMask, JsonFormatter, TextFormatter, formatter, mask

MASKED = [
    ("buyer 13800138000 paid", "buyer 138****8000 paid"),
    ('{"phone": "13800138000"}', '{"phone": "138****8000"}'),
    ("tel +86 138 0013 8000.", "tel +86 1** **** 8000."),
    ("call +1 (415) 555-0100", "call +1 (41*) ***-0100"),
    ("office 010-12345678", "office 010-****5678"),
    ("/settlement/13912345678.csv", "/settlement/139****5678.csv"),
    ("to bob.smith+deals@example.com.cn now", "to b***@example.com.cn now"),
]
LEFT_ALONE = [
    "order QY2610170000012345",
    "request 0f13800138000abc",
    "trace a1b2c3d4e5f60718293a4b5c6d7e8f90",
    "at 2026-11-11T10:00:00.123+08:00",
    "job fulfil:12 attempt 3",
    "from 192.168.100.200",
]


@pytest.mark.parametrize(("text", "shown"), MASKED)
def test_phone_numbers_and_emails_are_masked(text: str, shown: str) -> None:
    assert mask(text) == shown


@pytest.mark.parametrize("text", LEFT_ALONE)
def test_ids_times_and_addresses_are_left_alone(text: str) -> None:
    assert mask(text) == text


@pytest.mark.parametrize(("text", "shown"), [
    ("13800138000", "138****8000"),  # digits alone: the whole text is a number
    ("8613800138000", "861******8000"),
    ("0f13800138000abc", "0f13800138000abc"),  # letters and digits: never a contact
    ("Place", "Place"),
])
def test_a_text_masks_the_same_the_second_time(text: str, shown: str) -> None:
    # The second time a text is masked, what the first learnt of it (no contact in it) decides.
    assert (mask(text), mask(text)) == (shown, shown)


def _record(message: str, *args: object, fields: dict[str, object] | None = None, failure: bool = False) -> logging.LogRecord:
    exc_info = None
    if failure:
        try:
            raise ValueError("no account for 13800138000 / alice@example.com")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("quanyi.test", logging.WARNING, __file__, 1, message, args, exc_info)
    if fields is not None:
        record.fields = fields  # type: ignore[attr-defined]
    return record


def test_a_json_line_masks_the_message_its_arguments_fields_and_traceback() -> None:
    record = _record("buyer %s wrote from %s", "13800138000", "alice@example.com",
                     fields={"request_id": "r-1", "account": "13912345678", "attempt": 2}, failure=True)
    assert ContactMask().filter(record)
    line = JsonFormatter().format(record)
    entry = orjson.loads(line)
    assert "\n" not in line
    assert entry["message"] == "buyer 138****8000 wrote from a***@example.com"
    assert (entry["level"], entry["logger"], entry["request_id"], entry["account"], entry["attempt"]) == (
        "warning", "quanyi.test", "r-1", "139****5678", 2)
    assert "ValueError: no account for 138****8000 / a***@example.com" in entry["exception"]
    for clear in ("13800138000", "13912345678", "alice@"):
        assert clear not in line


def test_a_text_line_reads_as_a_sentence_with_its_fields_after_it() -> None:
    record = _record("GET /graphql 200", fields={"request_id": "r-2", "role": None, "duration_ms": 1.5})
    ContactMask().filter(record)
    line = TextFormatter().format(record)
    assert line.endswith("WARNING quanyi.test GET /graphql 200 request_id=r-2 duration_ms=1.5")


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="QUANYI_LOG_FORMAT must be one of json, text"):
        formatter("xml")


def test_logs_are_json_unless_debugging_or_demonstrating() -> None:
    assert log_settings({}) == ("json", "INFO")
    assert log_settings({"QUANYI_DEMO": "1"}) == ("text", "INFO")
    assert log_settings({"QUANYI_DEBUG": "1"}) == ("text", "INFO")
    assert log_settings({"QUANYI_DEMO": "1", "QUANYI_LOG_FORMAT": "json", "QUANYI_LOG_LEVEL": "debug"}) == ("json", "DEBUG")
