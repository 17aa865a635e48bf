"""Whether an error means a server could not be reached, and how a background loop logs it."""

from __future__ import annotations

import logging


# asyncpg's names for a connection that is gone (they are not OSErrors).
_CONNECTION_LOST = frozenset({
    "ConnectionDoesNotExistError", "ConnectionFailureError", "CannotConnectNowError", "AdminShutdownError",
    "CrashShutdownError",
})


def unreachable(error: BaseException) -> bool:
    """Whether the error, or one it came from, says the database (or Redis) could not be
    reached: a connection refused, cut or timed out, not a statement that failed."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (OSError, TimeoutError, PoolTimeout)):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if type(current).__name__ in _CONNECTION_LOST or type(current).__name__ == "ConnectionError":
            return True
        current = current.__cause__ or current.__context__
    return False


def log_failure(logger: logging.Logger, message: str, error: BaseException) -> None:
    """A background loop's failure: the traceback for a bug, one line for an outage (the
    database restarting would otherwise fill the logs with the same traceback)."""
    if unreachable(error):
        logger.warning("%s (unreachable: %s)", message, type(error).__name__)
    else:
        logger.error(message, exc_info=(type(error), error, error.__traceback__))
