"""Every HTTP request and WebSocket connection: its request id, its metrics and its log line.

`Observe` is the outermost middleware of the app (inside tracing's, when that is on):
- the request id is the client's `X-Request-Id` when it is a sane one (at most 64 letters,
  digits and dashes), else a new one; the app sees it in place of the header and every
  response carries it back;
- one `Exchange` per request (transport/exchange.py) gathers what the layers below learn:
  the operation, the caller, whether the answer came from the cache, and the error codes of
  the answer (read back from a GraphQL body only when it has `"errors"`);
- at the end, GraphQL requests are counted and timed (transport/metrics.py) and one line is
  logged for the request: JSON in production (services/core/logs.py), never with the
  request's body, variables or credentials.

Operation names are the client's choice, so as labels they are bounded: a name becomes a label
once an operation of that name has run without a request error, up to `MAX_OPERATION_NAMES`
names per process; any other name counts as `other`. The log line keeps the name as sent.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from marketplaces.http import ROUTER
from services.core import log_lines
from services.core.logs import FIELDS
from services.demo import marketplace as demo_marketplace
from transport import metrics, tracing
from transport.exchange import Exchange, begin, end

log = logging.getLogger("quanyi.request")

MAX_OPERATION_NAMES = 100
GRAPHQL_PATH = "/graphql"
# Probes and scrapes come every few seconds: their lines are at DEBUG.
# Probes, scrapes, and the demo gateway polling the marketplace it mounts itself: no line each.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics", f"{demo_marketplace.PREFIX}{ROUTER}"})


class OperationNames:
    """The operation names used as label values: the first `bound` that ran, then `other`."""

    def __init__(self, bound: int = MAX_OPERATION_NAMES) -> None:
        self._bound = bound
        self._known: set[str] = set()

    def label(self, exchange: Exchange) -> str:
        name = exchange.operation_name
        if exchange.operation_type is None:
            return "none"  # the request never got as far as an operation
        if name is None:
            return "anonymous"
        if name in self._known:
            return name
        if exchange.outcome == "ok" and len(self._known) < self._bound and len(name) <= 64:
            self._known.add(name)
            return name
        return "other"


class Observe:
    """The ASGI middleware: request ids, request metrics and one log line per request."""

    def __init__(self, app: ASGIApp, names: OperationNames | None = None) -> None:
        self._app = app
        self._names = names or OperationNames()
        # Label children by (operation, type, outcome): prometheus_client's labels() costs a few
        # microseconds a call, a dict lookup far less. Bounded as the labels are.
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id, scope = _with_request_id(scope)
        exchange = Exchange(request_id, scope["method"], scope["path"])
        graphql = exchange.path == GRAPHQL_PATH
        token = begin(exchange)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                headers = MutableHeaders(scope=message)
                if "x-request-id" not in headers:
                    headers["x-request-id"] = request_id
            elif graphql and message["type"] == "http.response.body" and not exchange.codes:
                exchange.note_errors(message.get("body", b""))
            await send(message)

        try:
            await self._app(scope, receive, sending)
        except BaseException:
            exchange.status = exchange.status if exchange.status and exchange.status >= 500 else 500
            raise
        finally:
            end(token)
            seconds = time.perf_counter() - exchange.started
            if graphql:
                self._count(exchange, seconds)
            _log(exchange, seconds)

    def _count(self, exchange: Exchange, seconds: float) -> None:
        key = (self._names.label(exchange), exchange.operation_type or "none", exchange.outcome)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (metrics.REQUESTS.labels(*key), metrics.LATENCY.labels(*key[:2]))
        series[0].inc()
        series[1].observe(seconds)
        for code in exchange.codes:
            metrics.ERRORS.labels(metrics.error_code(code)).inc()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id, scope = _with_request_id(scope)
        exchange = Exchange(request_id, "WEBSOCKET", scope["path"], websocket=True)
        token = begin(exchange)
        accepted = False

        async def sending(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                metrics.WEBSOCKETS.inc()
                headers = MutableHeaders(raw=list(message.get("headers") or []))
                headers.setdefault("x-request-id", request_id)
                message = {**message, "headers": headers.raw}
            elif message["type"] == "websocket.close":
                exchange.close_code = message.get("code", 1000)
            await send(message)

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect" and exchange.close_code is None:
                exchange.close_code = message.get("code", 1005)
            return message

        try:
            await self._app(scope, receiving, sending)
        finally:
            end(token)
            if accepted:
                metrics.WEBSOCKETS.dec()
            exchange.status = 101 if accepted else None
            _log(exchange, time.perf_counter() - exchange.started)


def _with_request_id(scope: Scope) -> tuple[str, Scope]:
    """The request id, and the scope with it as the only X-Request-Id the app will see."""
    headers = scope.get("headers") or []
    given = next((value for name, value in headers if name == b"x-request-id"), b"").decode("latin-1")
    if 0 < len(given) <= 64 and given.isascii() and given.replace("-", "").isalnum():
        return given, scope
    request_id = os.urandom(16).hex()
    kept = [(name, value) for name, value in headers if name != b"x-request-id"]
    return request_id, {**scope, "headers": [*kept, (b"x-request-id", request_id.encode())]}


def _log(exchange: Exchange, seconds: float) -> None:
    level = logging.DEBUG if exchange.path in QUIET_PATHS else logging.INFO
    if not log.isEnabledFor(level):
        return
    # The fields in their order, None left out.
    fields: dict[str, Any] = {"request_id": exchange.request_id, "method": exchange.method, "path": exchange.path}
    if exchange.status is not None:
        fields["status"] = exchange.status
    fields["duration_ms"] = round(seconds * 1000, 2)
    if exchange.operation_type is not None:
        operation = (exchange.operation_name or "")[:100]
        if operation:
            fields["operation"] = operation
        fields["operation_type"] = exchange.operation_type
    if exchange.path == GRAPHQL_PATH and not exchange.websocket:
        fields["outcome"] = exchange.outcome
        if exchange.codes:
            fields["errors"] = exchange.codes[:20]
        if exchange.cached:
            fields["cached"] = True
    if exchange.close_code is not None:
        fields["close_code"] = exchange.close_code
    if exchange.role is not None:
        fields["role"] = exchange.role
    if exchange.channel is not None:
        fields["channel"] = exchange.channel
    trace_id = tracing.current_trace_id()
    if trace_id is not None:
        fields["trace_id"] = trace_id
    what = "websocket closed" if exchange.websocket else f"{exchange.method} {exchange.path} {exchange.status}"
    if log_lines.write(log, level, what, fields):
        return  # the line the record below would make, written as the process's one handler would
    # The record made and handled as Logger.log would, less its search of the stack for the
    # caller: the caller is this line (one a request, so the search was a tenth of its cost).
    here = sys._getframe()
    record = log.makeRecord(
        log.name, level, here.f_code.co_filename, here.f_lineno, what, None, None, "_log", {FIELDS: fields}
    )
    log.handle(record)
