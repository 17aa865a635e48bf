"""Error codes of the contract: top-level `errors[].extensions.code` and `UserError.code`."""

from __future__ import annotations

import enum

import strawberry
from graphql import GraphQLError


class ErrorCode(enum.Enum):
    BAD_USER_INPUT = "BAD_USER_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    MAX_COST_EXCEEDED = "MAX_COST_EXCEEDED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
    DOCUMENT_NOT_TRUSTED = "DOCUMENT_NOT_TRUSTED"
    TOO_MANY_OPERATIONS = "TOO_MANY_OPERATIONS"
    # The database could not be reached (restarting, failing over): not a bug, try again shortly.
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


class ApiError(GraphQLError):
    """A request-level failure the client can act on; its message is safe to show."""

    code = ErrorCode.INTERNAL_SERVER_ERROR

    def __init__(self, message: str, *, field: str | None = None) -> None:
        extensions: dict[str, object] = {"code": self.code.value}
        if field:
            extensions["field"] = field
        super().__init__(message, extensions=extensions)


class BadUserInput(ApiError):
    code = ErrorCode.BAD_USER_INPUT


class Unauthenticated(ApiError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(ApiError):
    code = ErrorCode.FORBIDDEN


@strawberry.type(description="A business failure of a mutation: out of stock, below floor, ...")
class UserError:
    field: str | None
    message: str
    code: str
