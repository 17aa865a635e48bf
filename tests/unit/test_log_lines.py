"""A log line written straight to the process's handler is the line logging would write."""

from __future__ import annotations

import io
import logging
import orjson
import pytest

from services.core import log_lines
from services.core.log_privacy import install_contact_masking
from services.core.logs import ContactMask, JsonFormatter, TextFormatter, _Handler

FIELDS = [
    {"request_id": "shop-7f3a-0001", "method": "POST", "path": "/graphql", "status": 200, "duration_ms": 1.25,
     "operation": "Place", "operation_type": "mutation", "outcome": "ok", "role": "anonymous"},
    {"request_id": "13800138000", "method": "GET", "path": "/orders/13912345678", "status": None, "duration_ms": 0.5,
     "errors": ["BAD_USER_INPUT", "li.wei@example.cn"], "cached": True, "channel": "web"},
]


def configured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The process as `logs.configure("json")` leaves it: one masking JSON handler on the root
    (in place of pytest's own, which it adds as each test starts)."""
    install_contact_masking()
    written = io.StringIO()
    handler = _Handler(written)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContactMask())
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    monkeypatch.setattr(logging.getLogger("quanyi.lines-test"), "level", logging.DEBUG)
    return written


def _without_time(line: str) -> dict[str, object]:
    entry = orjson.loads(line)
    assert isinstance(entry.pop("ts"), str)
    return entry


@pytest.mark.parametrize("fields", FIELDS)
@pytest.mark.parametrize(("level", "message"), [(logging.INFO, "POST /graphql 200"), (logging.DEBUG, "GET /x/138 0013 8000 -")])
def test_the_line_written_straight_is_the_line_logging_writes(
    monkeypatch: pytest.MonkeyPatch, fields: dict[str, object], level: int, message: str
) -> None:
    stream = configured(monkeypatch)
    logger = logging.getLogger("quanyi.lines-test")
    logger.log(level, message, extra={"fields": dict(fields)})
    assert log_lines.write(logger, level, message, dict(fields))
    through_logging, straight = stream.getvalue().splitlines()
    assert through_logging.split(',"level"')[1] == straight.split(',"level"')[1]  # all but the time, byte for byte
    assert "138 0013 8000" not in straight and "13912345678" not in straight and "li.wei" not in straight
    assert _without_time(straight) == _without_time(through_logging)


def test_with_any_other_handler_or_format_the_line_is_left_to_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = configured(monkeypatch)
    logger = logging.getLogger("quanyi.lines-test")
    root = logging.getLogger()
    ours = root.handlers[0]
    monkeypatch.setattr(root, "handlers", [ours, logging.NullHandler()])
    assert not log_lines.write(logger, logging.INFO, "POST /graphql 200", {})
    monkeypatch.setattr(root, "handlers", [ours])
    monkeypatch.setattr(ours, "formatter", TextFormatter())
    assert not log_lines.write(logger, logging.INFO, "POST /graphql 200", {})
    assert stream.getvalue() == ""
