"""Shaping GraphQL errors for clients: a code on every error, internals masked."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError

from schema.errors import ApiError, ErrorCode
from services.core.database import unreachable

log = logging.getLogger("quanyi.errors")

MASKED_MESSAGE = "Internal server error"


class MalformedRequest(Exception):
    """Not a well-formed GraphQL-over-HTTP request (bad JSON, bad parameters, wrong method
    or content type). The spec asks for a 4xx status whatever the response media type."""

    def __init__(self, message: str, *, status: int = 400, allow: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.allow = message, status, allow


class RequestError(Exception):
    """A well-formed request that names no operation we can run. Like a validation
    failure: 400 with application/graphql-response+json, 200 with application/json."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.BAD_USER_INPUT) -> None:
        super().__init__(message)
        self.message, self.code = message, code


def request_error(message: str, code: ErrorCode) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code.value}}


def format_errors(
    errors: Iterable[GraphQLError], *, default_code: ErrorCode, request_id: str, debug: bool
) -> list[dict[str, Any]]:
    """Every error gets `extensions.code`; an unexpected exception is logged and masked."""
    formatted = []
    for error in errors:
        original = error.original_error
        entry: dict[str, Any] = dict(error.formatted)
        if isinstance(original, ApiError):
            entry["extensions"] = {**(original.extensions or {}), **(entry.get("extensions") or {})}
        elif isinstance(original, Exception) and _is_bug(error, original) and unreachable(original):
            # An outage, not a bug: one line without the traceback, and a code clients retry on.
            log.warning("storage unreachable in %s (request %s): %s", ".".join(str(p) for p in error.path or ()),
                        request_id, type(original).__name__)
            entry["extensions"] = {"code": ErrorCode.SERVICE_UNAVAILABLE.value, "requestId": request_id}
            entry["message"] = "The service is briefly unavailable: try again shortly"
            formatted.append(entry)
            continue
        elif isinstance(original, Exception) and _is_bug(error, original):
            log.error(
                "unexpected error in %s (request %s)",
                ".".join(str(p) for p in error.path or ()),
                request_id,
                exc_info=(type(original), original, original.__traceback__),
            )
            entry["extensions"] = {
                "code": ErrorCode.INTERNAL_SERVER_ERROR.value,
                "requestId": request_id,
            }
            if not debug or _from_storage(original):
                entry["message"] = MASKED_MESSAGE
            formatted.append(entry)
            continue
        extensions = dict(entry.get("extensions") or {})
        extensions.setdefault("code", default_code.value)
        entry["extensions"] = extensions
        if not isinstance(original, ApiError):
            entry["message"] = without_values(entry["message"])
        formatted.append(entry)
    return formatted


# graphql-core quotes the offending input back ("…, found: {'secret': '…'}", "… value: …").
# An input may hold a card secret or a key, so the quoted value is dropped: the message
# still names the field, the type and the path.
_FOUND = re.compile(r",? found: .*$", re.DOTALL)
_CANNOT_REPRESENT = re.compile(r"(cannot represent[^:]*): .*$", re.DOTALL)
_GOT_VALUE = re.compile(r"got invalid value .*?; ", re.DOTALL)


def without_values(message: str) -> str:
    message = _GOT_VALUE.sub("got an invalid value; ", message)
    message = _CANNOT_REPRESENT.sub(r"\1 (value not shown).", message)
    return _FOUND.sub(" (value not shown).", message)


# Drivers and the toolkit above them put the statement and its bound values (a buyer's phone,
# a key's digest) in their messages: masked even in debug mode, where other bugs show theirs.
_STORAGE_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite", "sqlite3", "psycopg", "redis")


def _from_storage(error: BaseException) -> bool:
    """Whether the error, or one it was raised from or during, came from the database or Redis."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__module__.split(".")[0] in _STORAGE_MODULES:
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_bug(error: GraphQLError, original: Exception) -> bool:
    # Only a resolver's own exception (an error with a path) is a bug. Without a path the
    # error came from coercing the client's variables: a scalar's ValueError there
    # describes the client's input, and its message is the useful part.
    return error.path is not None and not isinstance(original, GraphQLError)
