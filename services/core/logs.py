"""How the process logs: one JSON object a line in production, plain text in development.

`configure("json" | "text")` gives the root logger one handler on stderr, and takes over the
format of uvicorn's loggers, so everything the process says reads the same way. Structured
facts travel in `extra={"fields": {...}}`: the JSON line carries them as keys, the text line
as `key=value` after the message.

Whatever a record says passes `ContactMask` first: anything shaped like a phone number or
an e-mail address is masked (`138****8000`, `b***@example.com`), in the message, its
fields and its traceback, whoever logged it. Secrets are kept out at the source: no log call
passes a key, a card secret or a request's variables.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

FIELDS = "fields"
FORMATS = ("json", "text")

# A Chinese mobile number (optionally +86, spaced or dashed as 138 0013 8000), any
# international number written with a leading +, and a Chinese landline (010-12345678).
# Never inside a longer word or number: an order number or a hex request id is left alone.
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}"
    r"|\+\d[\d ()-]{6,18}\d"
    r"|0\d{2,3}-\d{7,8}"
    r")(?!\w)"
)
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def _masked_phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    shown = set(digits[:3] + digits[-4:]) if len(digits) > 7 else set(digits[-2:])
    return "".join(c if not c.isdigit() or i in shown else "*" for i, c in enumerate(text))


def mask(text: str) -> str:
    """`text` with phone numbers and e-mail addresses masked."""
    if text in _CLEAN:
        return text
    if text.isascii() and text.isalnum() and not text.isdigit():
        # Letters and digits alone, not all digits: both patterns want a non-word character
        # (or the text's ends) on either side, so only a text of digits alone could match.
        return text
    masked = text
    if "@" in masked:
        masked = _EMAIL.sub(r"\1***@\2", masked)
    masked = _PHONE.sub(_masked_phone, masked)
    if masked == text:
        _CLEAN.add(text)
    return masked


class CleanTexts(set[str]):
    """Texts seen to hold no contact, by one masking function.

    A request line says the same method, path, operation, role and message again and again;
    a set lookup costs far less than the patterns. Only texts that came out of the mask
    unchanged are added, so it never holds a phone or an address; bounded, and emptied when
    full. One per masking function: their patterns differ.
    """

    SIZE = 4096
    LONGEST = 256

    def add(self, text: str) -> None:
        if len(text) > self.LONGEST:
            return
        if len(self) >= self.SIZE:
            self.clear()
        super().add(text)


_CLEAN = CleanTexts()


def _masked_value(value: Any) -> Any:
    if isinstance(value, str):
        return value if value in _CLEAN else mask(value)
    if isinstance(value, (list, tuple)):
        return [_masked_value(item) for item in value]
    return value


class ContactMask(logging.Filter):
    """Masks phone numbers and e-mail addresses in every record the handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask(record.getMessage()), None
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            setattr(record, FIELDS, masked_fields(fields))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return True


def masked_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A record's fields as ContactMask leaves them."""
    masked: dict[str, Any] = {}
    for key, value in fields.items():  # _masked_value's work, inline: a request line has a dozen
        if isinstance(value, str):
            masked[key] = value if value in _CLEAN else mask(value)
        elif isinstance(value, (list, tuple)):
            masked[key] = [_masked_value(item) for item in value]
        else:
            masked[key] = value
    return masked


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", ...fields, "exception"?}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        fields = getattr(record, FIELDS, None)
        return json_line(
            record.created, record.levelname, record.name, record.getMessage(),
            fields if isinstance(fields, dict) else None, record.exc_text, record.stack_info,
        )


def json_line(
    created: float, level_name: str, logger: str, message: str, fields: dict[str, Any] | None,
    exception: str | None = None, stack: str | None = None,
) -> str:
    """The JSON line of a record made at `created` (time.time()): JsonFormatter's form."""
    entry: dict[str, Any] = {
        "ts": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level_name.lower(),
        "logger": logger,
        "message": message,
    }
    if fields is not None:
        for key, value in fields.items():
            if value is not None:
                entry[key] = value
    if exception:
        entry["exception"] = exception
    if stack:
        entry["stack"] = stack
    return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message key=value ...`, for a developer's terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            line += "".join(f" {key}={value}" for key, value in fields.items() if value is not None)
        return line


class _Handler(logging.StreamHandler):
    """The handler `configure` installs; found again by its class when configured twice."""


def formatter(kind: str) -> logging.Formatter:
    if kind not in FORMATS:
        raise ValueError(f"QUANYI_LOG_FORMAT must be one of {', '.join(FORMATS)}, got {kind!r}")
    return JsonFormatter() if kind == "json" else TextFormatter()


def configure(kind: str, level: str = "INFO") -> None:
    """Send every record to stderr in `kind` format, masked. Safe to call again."""
    handler = _Handler(sys.stderr)
    handler.setFormatter(formatter(kind))
    handler.addFilter(ContactMask())
    root = logging.getLogger()
    # Ours replaces itself, and a plain stream handler (logging.basicConfig's) would say
    # everything a second time; other handlers (files, test capture) stay.
    for old in list(root.handlers):
        if type(old) in (_Handler, logging.StreamHandler):
            root.removeHandler(old)
    root.addHandler(handler)
    # The gateway's own records at `level`; other libraries keep theirs (WARNING by default).
    logging.getLogger("quanyi").setLevel(level.upper())
    # httpx says every outbound request at INFO, with its whole URL (a signed call's query
    # string included): its warnings only. Ours log the calls that matter, without secrets.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # uvicorn configures its own loggers before it builds the app: same format, same mask.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        for own in logging.getLogger(name).handlers:
            own.setFormatter(formatter(kind))
            if not any(isinstance(f, ContactMask) for f in own.filters):
                own.addFilter(ContactMask())


def uvicorn_config(kind: str) -> dict[str, Any]:
    """uvicorn's logging configuration in `kind` format, masked: applied by uvicorn itself in
    its supervising process and in every worker, before the app is built."""
    formatter(kind)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"contacts": {"()": ContactMask}},
        "formatters": {"quanyi": {"()": JsonFormatter if kind == "json" else TextFormatter}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "quanyi", "filters": ["contacts"],
                                 "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }

