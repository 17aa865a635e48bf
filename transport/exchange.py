"""What is known of the request under way, gathered by the layers it passes through.

transport/observe.py opens one `Exchange` per HTTP request or WebSocket connection and
reads it when the request ends (metrics, the log line). Below it, whoever learns something
notes it here: the operation (`ObservedAdmission`, which every GraphQL operation passes),
the caller (`note_caller`, where the gateway resolves a key), a cached answer.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import DocumentNode, OperationDefinitionNode

from domain.access import Principal
from transport.admission import Admission

_ERRORS_KEY = b'"errors"'
_MAX_ERRORS_BODY = 256 * 1024


@dataclass(slots=True)
class Exchange:
    """What is known of one request so far."""

    request_id: str
    method: str
    path: str
    websocket: bool = False
    started: float = field(default_factory=time.perf_counter)
    status: int | None = None
    operation_name: str | None = None
    operation_type: str | None = None
    role: str | None = None
    channel: str | None = None
    cached: bool = False
    codes: list[str] = field(default_factory=list)
    close_code: int | None = None

    def note_operation(self, operation: OperationDefinitionNode) -> None:
        if self.websocket:
            return  # a connection runs many operations; the line is about the connection
        self.operation_name = operation.name.value if operation.name else None
        self.operation_type = operation.operation.value

    def note_errors(self, body: bytes) -> None:
        if _ERRORS_KEY not in body or len(body) > _MAX_ERRORS_BODY:
            return
        try:
            errors = orjson.loads(body).get("errors")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if isinstance(errors, list):
            self.codes = [
                str((error.get("extensions") or {}).get("code")) if isinstance(error, dict) else "OTHER"
                for error in errors
            ]

    @property
    def outcome(self) -> str:
        status = self.status or 500
        if status >= 500 or "INTERNAL_SERVER_ERROR" in self.codes or "SERVICE_UNAVAILABLE" in self.codes:
            return "server_error"
        if status >= 400 or self.codes:
            return "client_error"
        return "ok"


_current: contextvars.ContextVar[Exchange | None] = contextvars.ContextVar("quanyi_exchange", default=None)


def current() -> Exchange | None:
    return _current.get()


def begin(exchange: Exchange) -> contextvars.Token[Exchange | None]:
    return _current.set(exchange)


def end(token: contextvars.Token[Exchange | None]) -> None:
    _current.reset(token)


def note_caller(principal: Principal) -> None:
    """The caller of the request under way, if any (the gateway calls it when it resolves a key)."""
    exchange = _current.get()
    if exchange is None:
        return
    if principal.order_number is not None:
        exchange.role = "buyer"
    else:
        exchange.role = principal.role.value.lower() if principal.role is not None else "anonymous"
    exchange.channel = principal.channel


def note_cache_hit() -> None:
    exchange = _current.get()
    if exchange is not None:
        exchange.cached = True


class ObservedAdmission(Admission):
    """Admission control, telling the request under way which operation it runs."""

    def requested(self, query: str, document: DocumentNode, operation: OperationDefinitionNode,
                  variables: Mapping[str, Any] | None) -> int:
        exchange = _current.get()
        if exchange is not None:
            exchange.note_operation(operation)
        return super().requested(query, document, operation, variables)
