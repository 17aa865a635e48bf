"""A structured log line written straight to the process's own handler, when nothing else
would see it on the way.

Logging a line makes a LogRecord (the record factory masks its message), walks the logger
and its parents for handlers, runs the handler's filter (ContactMask) and its formatter
(JsonFormatter), and writes under the handler's lock: most of that is machinery, and the
request log line (transport/observe.py) is written for every request. When the process logs
exactly as `logs.configure("json")` and `install_contact_masking()` set it up — their one
handler on the root logger, in JSON, masking, with no other handler or filter on the way and
records made by logging's own LogRecord — `write` produces that very line itself: the same
masks, the same keys in the same order, the same timestamp. Otherwise it writes nothing and
says so, and the caller logs the usual way (tests capturing records, an operator's own
handlers, the text format).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from services.core import logs
from services.core.log_privacy import masked_message, masks_plain_records


def _only_handler(logger: logging.Logger, level: int) -> logs._Handler | None:
    """The one handler a record of `logger` at `level` would reach, if it is ours and as
    `configure` made it; None when anything else is on the way."""
    found: logs._Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.disabled or current.filters:
            return None
        for handler in current.handlers:
            if found is not None or type(handler) is not logs._Handler:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    if found is None or level < found.level or type(found.formatter) is not logs.JsonFormatter:
        return None
    if len(found.filters) != 1 or type(found.filters[0]) is not logs.ContactMask:
        return None
    return found


def write(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> bool:
    """Writes what `logger.log(level, message, extra={"fields": fields})` would write, if the
    process logs as `configure` set it up (True); else writes nothing (False). `level` is one
    the logger is enabled for."""
    handler = _only_handler(logger, level)
    if handler is None or not masks_plain_records():
        return False
    created = time.time()
    line = logs.json_line(
        created, logging.getLevelName(level), logger.name, logs.mask(masked_message(message)),
        logs.masked_fields(fields),
    )
    handler.acquire()
    try:
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except RecursionError:
        raise
    except Exception:  # as StreamHandler.emit: told on stderr, the request goes on
        handler.handleError(logger.makeRecord(logger.name, level, __file__, 0, message, None, None))
    finally:
        handler.release()
    return True
