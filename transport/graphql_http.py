"""GraphQL over HTTP (GET and POST on /graphql), following the GraphQL-over-HTTP spec.

strawberry's own view answers `application/json` only and replies 200 to documents
that fail validation; the spec wants `application/graphql-response+json` honoured
through `Accept` with 4xx for request errors, and 405 for mutations over GET. This
view does the HTTP part and hands a validated document to graphql-core's executor
over strawberry's schema, so resolvers are the same ones the WebSocket side runs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import ExecutionResult, OperationType, execute, get_operation_ast
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from strawberry import Schema
from strawberry.http.ides import get_graphql_ide_html

from config import Settings
from schema.context import Context
from schema.errors import ApiError, ErrorCode
from transport.documents import Documents
from transport.errors import format_errors, request_error
from transport.media import GRAPHQL_RESPONSE_JSON, JSON, negotiate, utf8_json_body

log = logging.getLogger("quanyi.http")

ContextFactory = Callable[[Request, str], Awaitable[Context]]


class RequestError(Exception):
    """The request could not be turned into a GraphQL operation."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.BAD_USER_INPUT, status: int = 400):
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


@dataclass(frozen=True, slots=True)
class Operation:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


class GraphQLEndpoint:
    """The Starlette endpoint for HTTP requests to /graphql."""

    def __init__(self, schema: Schema, settings: Settings, context: ContextFactory) -> None:
        self._schema = schema
        self._core = schema._schema  # graphql-core schema strawberry built for us
        self._settings = settings
        self._context = context
        self._documents = Documents(self._core, settings.limits)
        self._executor = schema.execution_context_class

    async def handle(self, request: Request) -> Response:
        request_id = _request_id(request)
        if request.method not in ("GET", "POST"):
            return _plain(405, "GraphQL is served over GET and POST.", allow="GET, POST")
        if self._wants_ide(request):
            return HTMLResponse(get_graphql_ide_html("graphiql"))
        media = negotiate(request.headers.get("accept"))
        if media is None:
            return _plain(406, f"Responses are {GRAPHQL_RESPONSE_JSON} or {JSON}.")
        try:
            operation = await self._read(request)
            response = await self._run(request, operation, media, request_id)
        except RequestError as error:
            status = error.status if error.status != 400 or media == GRAPHQL_RESPONSE_JSON else 200
            body = {"errors": [request_error(error.message, error.code)]}
            response = _json(body, status, media, allow="POST" if error.status == 405 else None)
        except _HttpFailure as failure:
            response = _plain(failure.status, failure.message)
        response.headers["x-request-id"] = request_id
        return response

    def _wants_ide(self, request: Request) -> bool:
        return (
            self._settings.graphiql
            and request.method == "GET"
            and "query" not in request.query_params
            and "text/html" in request.headers.get("accept", "")
        )

    async def _read(self, request: Request) -> Operation:
        if request.method == "GET":
            params = request.query_params
            return _operation(
                {
                    "query": params.get("query"),
                    "operationName": params.get("operationName"),
                    "variables": _json_param(params.get("variables"), "variables"),
                    "extensions": _json_param(params.get("extensions"), "extensions"),
                }
            )
        body = await utf8_json_body(request, self._settings.limits.max_body_bytes)
        if body.failure is not None:
            raise _HttpFailure(*body.failure)
        try:
            payload = orjson.loads(body.content)
        except orjson.JSONDecodeError:
            raise RequestError("the request body is not valid JSON") from None
        if isinstance(payload, list):
            raise RequestError("batched requests are not supported")
        if not isinstance(payload, dict):
            raise RequestError("the request body must be a JSON object")
        return _operation(payload)

    async def _run(self, request: Request, op: Operation, media: str, request_id: str) -> Response:
        parsed = self._documents.parse(op.query)
        if parsed.document is None:
            return self._errors(parsed.errors, ErrorCode.GRAPHQL_PARSE_FAILED, media, request_id)
        operation = get_operation_ast(parsed.document, op.operation_name)
        if operation is None:
            raise RequestError(
                f"no operation named {op.operation_name!r}"
                if op.operation_name
                else "the document has several operations: give operationName"
            )
        if operation.operation is OperationType.MUTATION and request.method == "GET":
            raise RequestError("mutations are sent with POST", ErrorCode.BAD_USER_INPUT, 405)
        if operation.operation is OperationType.SUBSCRIPTION:
            raise RequestError("subscriptions are served over WebSocket on /graphql")
        errors = self._documents.validate(op.query, parsed.document)
        if errors:
            return self._errors(errors, ErrorCode.GRAPHQL_VALIDATION_FAILED, media, request_id)
        try:
            context = await self._context(request, request_id)
        except ApiError as error:
            status = 401 if error.code is ErrorCode.UNAUTHENTICATED else 403
            return _json({"errors": format_errors([error], default_code=error.code, request_id=request_id, debug=False)}, status, media)
        result = execute(
            self._core,
            parsed.document,
            context_value=context,
            variable_values=op.variables,
            operation_name=op.operation_name,
            executor_class=self._executor,
            operation_extensions=op.extensions,
        )
        if not isinstance(result, ExecutionResult):
            result = await result
        return self._result(result, media, request_id)

    def _errors(self, errors: Any, code: ErrorCode, media: str, request_id: str) -> Response:
        body = {"errors": format_errors(errors, default_code=code, request_id=request_id, debug=False)}
        return _json(body, 400 if media == GRAPHQL_RESPONSE_JSON else 200, media)

    def _result(self, result: ExecutionResult, media: str, request_id: str) -> Response:
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            # Variables that do not coerce: a request error, not a field error.
            return self._errors(result.errors, ErrorCode.BAD_USER_INPUT, media, request_id)
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = format_errors(
                result.errors,
                default_code=ErrorCode.INTERNAL_SERVER_ERROR,
                request_id=request_id,
                debug=self._settings.debug,
            )
        return _json(body, 200, media)


class _HttpFailure(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _operation(payload: dict[str, Any]) -> Operation:
    query = payload.get("query")
    if query is None:
        raise RequestError("the request has no query")
    if not isinstance(query, str):
        raise RequestError("query must be a string")
    name = payload.get("operationName")
    if name is not None and not isinstance(name, str):
        raise RequestError("operationName must be a string or null")
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError("variables must be an object or null")
    extensions = payload.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise RequestError("extensions must be an object or null")
    return Operation(query, variables, name, extensions)


def _json_param(raw: str | None, name: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError(f"{name} must be JSON-encoded") from None


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    if 0 < len(given) <= 64 and given.isascii() and given.replace("-", "").isalnum():
        return given
    return uuid.uuid4().hex


def _json(body: dict[str, Any], status: int, media: str, allow: str | None = None) -> Response:
    headers = {"allow": allow} if allow else None
    return Response(orjson.dumps(body), status, headers, media_type=f"{media}; charset=utf-8")


def _plain(status: int, message: str, allow: str | None = None) -> Response:
    headers = {"allow": allow} if allow else None
    return Response(message, status, headers, media_type="text/plain; charset=utf-8")
