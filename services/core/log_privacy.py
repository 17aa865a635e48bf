"""No buyer's phone or e-mail address in a log line, whoever wrote it.

Our own log lines name orders by number, never by contact; but an error may quote one: a
database error with the row it could not write, an SMTP server refusing a recipient, a
library's message. Rather than trust every one of them, each log record of the process is
masked when it is made (`domain.contacts.mask_contacts`): its message and its traceback.
Masking at the record, not at a handler, holds whatever handlers an operator configures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from domain.contacts import mask_contacts
from services.core.logs import CleanTexts

_FORMATTER = logging.Formatter()
_CLEAN = CleanTexts()


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with contacts masked in its message and its exception's text."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed call: logging reports it when the record is emitted
        return record
    masked = masked_message(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        # Formatted now, once, masked; handlers use the cached text instead of formatting it again.
        record.exc_text = mask_contacts(_FORMATTER.formatException(record.exc_info))
    return record


def masked_message(message: str) -> str:
    """A record's message as it is made: contacts masked."""
    if message in _CLEAN:
        return message
    masked = mask_contacts(message)
    if masked == message:
        _CLEAN.add(message)
    return masked


# The factory installed here, when what it wraps is logging's own LogRecord.
_over_plain_records: Callable[..., logging.LogRecord] | None = None


def install_contact_masking() -> None:
    """Mask every log record made in this process from now on; calling it again changes nothing."""
    global _over_plain_records
    made = logging.getLogRecordFactory()
    if getattr(made, "masks_contacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(made(*args, **kwargs))

    factory.masks_contacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    if made is logging.LogRecord:
        _over_plain_records = factory


def masks_plain_records() -> bool:
    """Whether records are made by logging's LogRecord and masked, and nothing else."""
    return _over_plain_records is not None and logging.getLogRecordFactory() is _over_plain_records
