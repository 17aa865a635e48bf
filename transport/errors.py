"""Shaping GraphQL errors for clients: a code on every error, internals masked."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from graphql import GraphQLError

from schema.errors import ApiError, ErrorCode

log = logging.getLogger("quanyi.errors")

MASKED_MESSAGE = "Internal server error"


def request_error(message: str, code: ErrorCode) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code.value}}


def format_errors(
    errors: Iterable[GraphQLError], *, default_code: ErrorCode, request_id: str, debug: bool
) -> list[dict[str, Any]]:
    """Every error gets `extensions.code`; an unexpected exception is logged and masked."""
    formatted = []
    for error in errors:
        original = error.original_error
        entry = error.formatted
        if isinstance(original, ApiError):
            entry["extensions"] = {**(original.extensions or {}), **(entry.get("extensions") or {})}
        elif original is not None and not isinstance(original, GraphQLError):
            log.error(
                "unexpected error in %s (request %s)",
                ".".join(str(p) for p in error.path or ()),
                request_id,
                exc_info=(type(original), original, original.__traceback__),
            )
            entry["extensions"] = {"code": ErrorCode.INTERNAL_SERVER_ERROR.value, "requestId": request_id}
            if not debug:
                entry["message"] = MASKED_MESSAGE
            formatted.append(entry)
            continue
        extensions = dict(entry.get("extensions") or {})
        extensions.setdefault("code", default_code.value)
        entry["extensions"] = extensions
        formatted.append(entry)
    return formatted
