"""GraphQL over HTTP (GET and POST on /graphql), following the GraphQL-over-HTTP spec.

strawberry's own view answers `application/json` only and replies 200 to documents
that fail validation; the spec wants `application/graphql-response+json` honoured
through `Accept` with 4xx for request errors, and 405 for mutations over GET. This
view does the HTTP part and hands a validated document to graphql-core's executor
over strawberry's schema, so resolvers are the same ones the WebSocket side runs.

Three kinds of failure, three answers:
- not a well-formed GraphQL-over-HTTP request (bad JSON, bad parameters, wrong
  method or content type): its 4xx status, whatever the media type;
- a well-formed request that cannot run (document does not parse or validate, no
  operation to pick, variables that do not coerce): 400 with
  application/graphql-response+json, 200 with application/json;
- an operation that ran: 200, with field errors beside the data.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
)
from starlette.requests import Request
from starlette.responses import Response
from strawberry import Schema

from config import Settings
from domain.access import Principal, may_see_schema
from schema.context import Context
from schema.errors import ApiError, ErrorCode
from transport.admission import Admission, Admitted, Refused
from transport.catalog_run import CatalogRun
from transport.compiled_mutation import CompiledMutations
from transport.cost_floor import CostFloor
from transport.documents import NUL_MESSAGE, Documents, has_nul_character
from transport.errors import (
    MASKED_MESSAGE,
    MalformedRequest,
    RequestError,
    format_errors,
    request_error,
)
from transport.graphiql import GraphiQL
from transport.input_bounds import InputBounds
from transport.media import GRAPHQL_RESPONSE_JSON, JSON, negotiate, utf8_json_body
from transport.persisted import PersistedDocuments
from transport.params import Operation, operation_from_json, operation_from_query_string
from transport.response_cache import Answer, ResponseCache

log = logging.getLogger("quanyi.http")

# Below this length a document parses in well under a millisecond: the floor is not worth reading.
FLOOR_FROM_CHARACTERS = 2048

Authenticate = Callable[[Request], Awaitable[Principal]]
ContextFactory = Callable[[Request, Principal, str], Context]
ClientAddress = Callable[[Request], str | None]

ALLOWED_METHODS = "GET, POST"


class CallerRefused(Exception):
    """The request's credentials were refused: no step after authentication runs."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


class GraphQLEndpoint:
    """The Starlette endpoint for HTTP requests to /graphql."""

    def __init__(
        self,
        schema: Schema,
        settings: Settings,
        authenticate: Authenticate,
        context: ContextFactory,
        admission: Admission,
        client_address: ClientAddress,
        cache: ResponseCache | None = None,
        graphiql: GraphiQL | None = None,
        persisted: PersistedDocuments | None = None,
        catalog: CatalogRun | None = None,
    ) -> None:
        self._schema = schema
        self._graphiql = graphiql or GraphiQL(settings.graphiql)
        self._admission = admission
        self._client_address = client_address
        self._authenticate = authenticate
        self._cache = cache
        self._core = schema._schema  # graphql-core schema strawberry built for us
        self._settings = settings
        self._context = context
        self._documents = Documents(self._core, settings.limits)
        self._cost_floor = CostFloor(admission.cost, max_tokens=settings.limits.max_tokens)
        self._bounds = InputBounds(self._core, cache_size=settings.limits.document_cache_size)
        self._executor = schema.execution_context_class
        self._persisted = persisted
        # placeOrder documents compiled past graphql-core's executor (transport/compiled_mutation.py).
        self.mutations = (
            CompiledMutations(self._core, admission.cost, cache_size=settings.limits.document_cache_size)
            if settings.compiled_mutations else None
        )
        self._catalog = catalog

    async def handle(self, request: Request) -> Response:
        request_id = _request_id(request)
        response = await self._respond(request, request_id)
        response.headers["x-request-id"] = request_id
        return response

    async def _respond(self, request: Request, request_id: str) -> Response:
        if request.method not in ("GET", "POST"):
            return _plain(405, "GraphQL is served over GET and POST.", allow=ALLOWED_METHODS)
        if self._browser_opens_page(request):
            return self._graphiql.page()  # GraphiQL, or how to turn it on
        media = negotiate(request.headers.get("accept"))
        if media is None:
            return _plain(406, f"Responses are {GRAPHQL_RESPONSE_JSON} or {JSON}.")
        try:
            operation = await self._read(request)
            return await self._run(request, operation, media, request_id)
        except MalformedRequest as error:
            body = {"errors": [request_error(error.message, ErrorCode.BAD_USER_INPUT)]}
            return _json(body, error.status, media, allow=error.allow)
        except RequestError as error:
            body = {"errors": [request_error(error.message, error.code)]}
            return _json(body, _request_error_status(media), media)
        except CallerRefused as refused:
            return self._refused(refused.error, media, request_id)
        except Exception:
            # A bug in the gateway itself, outside any resolver: log it, say nothing of it.
            log.exception("unexpected error serving request %s", request_id)
            body = {"errors": [_internal_error(request_id)]}
            return _json(body, 500, media)

    def _browser_opens_page(self, request: Request) -> bool:
        return (
            request.method == "GET"
            and "query" not in request.query_params
            and "text/html" in request.headers.get("accept", "")
        )

    async def _read(self, request: Request) -> Operation:
        if request.method == "GET":
            return operation_from_query_string(request.query_params)
        body = await utf8_json_body(request, self._settings.limits.max_body_bytes)
        return operation_from_json(body)

    async def _run(self, request: Request, op: Operation, media: str, request_id: str) -> Response:
        principal: Principal | None = None
        resolved = None
        if self._persisted is not None:
            if self._persisted.needs_caller(op.query):
                principal = await self._caller(request, principal)
            # Before parsing: an untrusted document costs no more than this lookup.
            resolved = await self._persisted.resolve(op.query, op.extensions, principal)
            op = replace(op, query=resolved.query)
        elif op.query is None:
            raise MalformedRequest("the request has no query")
        query: str = op.query  # type: ignore[assignment]
        if len(query) >= FLOOR_FROM_CHARACTERS and not self._documents.known(query):
            # A large new document is read for a floor under its cost before it is parsed:
            # one far too costly is refused for a fraction of the parser's work.
            floor = self._cost_floor.requested(query)
            if floor > self._admission.max_cost:
                principal = await self._caller(request, principal)
                try:
                    await self._admission.admit(floor, principal, self._client_address(request))
                except Refused as refused:
                    return self._throttled(refused, media)
        parsed = self._documents.parse(query)
        if parsed.document is None:
            return self._errors(parsed.errors, ErrorCode.GRAPHQL_PARSE_FAILED, media, request_id)
        operation = get_operation_ast(parsed.document, op.operation_name)
        if operation is None:
            raise RequestError(
                f"no operation named {op.operation_name!r}"
                if op.operation_name
                else "the document has several operations: give operationName"
            )
        # Before validation on purpose: a GET must never run a mutation, valid or not.
        if operation.operation is OperationType.MUTATION and request.method == "GET":
            raise MalformedRequest("mutations are sent with POST", status=405, allow="POST")
        if operation.operation is OperationType.SUBSCRIPTION:
            raise RequestError("subscriptions are served over WebSocket on /graphql")
        # The cost before validation: validating a large document takes tens of milliseconds,
        # so one too costly to run is refused without that work (a flood of them stays cheap).
        requested = self._admission.requested(query, parsed.document, operation, op.variables)
        # Before validation: whether its errors may name what the schema holds.
        principal = await self._caller(request, principal)
        public = not (self._settings.public_introspection or may_see_schema(principal))
        if requested <= self._admission.max_cost:
            errors = self._documents.validate(query, parsed.document, public=public)
            if errors:
                return self._errors(errors, ErrorCode.GRAPHQL_VALIDATION_FAILED, media, request_id)
        if op.nul_possible and has_nul_character(op.variables):
            raise RequestError(f"variables: {NUL_MESSAGE}")
        over = self._bounds.check(query, parsed.document, operation, op.variables)
        if over is not None:
            return self._errors([over], ErrorCode.BAD_USER_INPUT, media, request_id)
        try:
            admitted = await self._admission.admit(requested, principal, self._client_address(request))
        except Refused as refused:
            return self._throttled(refused, media)
        if resolved is not None and self._persisted is not None:
            await self._persisted.remember(resolved)  # it validated, and its caller is within budget
        compiled = self.mutations.plan(query, parsed.document, operation) if self.mutations else None
        variables = compiled.variables(op.variables) if compiled is not None else None
        if compiled is not None and variables is not None:
            result = await compiled.execute(lambda: self._context(request, principal, request_id), variables)
            actual = compiled.actual_cost(result.data)
            return await self._result(result, parsed.document, operation, admitted, media, request_id, actual)
        # A cached answer is looked up before any per-request state is built.
        key = None
        if self._cache is not None and ResponseCache.cacheable(operation):
            key = ResponseCache.key(query, op.operation_name, op.variables, principal)
        if key is None:
            return await self._execute(request, op, parsed.document, operation, principal, admitted, media, request_id)
        assert self._cache is not None
        cached = self._cache.get(key)
        if cached is not None:
            if self._cache.due(key):
                # Its successor is computed beside the readers: none of them, this one included, waits.
                self._cache.renew(key, self._renewed(request, op, parsed.document, operation, principal, request_id))
            return await self._served(cached, admitted, media)
        flight = self._cache.in_flight(key)
        if flight is not None:
            shared = await flight
            if shared is not None:
                return await self._served(shared, admitted, media)
            return await self._execute(request, op, parsed.document, operation, principal, admitted, media, request_id)
        answer: Answer | None = None
        try:
            result = await self._run_document(request, op, parsed.document, operation, principal, request_id)
            if not result.errors:
                answer = Answer(orjson.dumps({"data": result.data}), self._admission.cost.actual(parsed.document, operation, result.data))
                return await self._served(answer, admitted, media)
            return await self._result(result, parsed.document, operation, admitted, media, request_id)
        finally:
            self._cache.landed(key, answer)

    async def _renewed(
        self, request: Request, op: Operation, document: DocumentNode, operation: OperationDefinitionNode,
        principal: Principal, request_id: str,
    ) -> Answer | None:
        """A cached answer's successor, or None when it has errors (not to be cached)."""
        result = await self._run_document(request, op, document, operation, principal, request_id)
        if result.errors:
            return None
        return Answer(orjson.dumps({"data": result.data}), self._admission.cost.actual(document, operation, result.data))

    async def _caller(self, request: Request, known: Principal | None) -> Principal:
        """The request's caller: authenticated once, by whichever step first needs to know.
        An unknown or revoked key raises CallerRefused (answered 401, or 403)."""
        if known is not None:
            return known
        try:
            return await self._authenticate(request)
        except ApiError as error:
            raise CallerRefused(error) from None

    async def _served(self, answer: Answer, admitted: Admitted, media: str) -> Response:
        # The shared answer is `{"data": ...}`: this caller's cost goes in before its last brace.
        cost = await self._admission.settle(admitted, answer.cost)
        body = answer.body[:-1] + b',"extensions":' + orjson.dumps({"cost": cost}) + b"}"
        return _encoded(body, 200, media)

    async def _execute(
        self, request: Request, op: Operation, document: DocumentNode, operation: OperationDefinitionNode,
        principal: Principal, admitted: Admitted, media: str, request_id: str,
    ) -> Response:
        result = await self._run_document(request, op, document, operation, principal, request_id)
        return await self._result(result, document, operation, admitted, media, request_id)

    async def _run_document(
        self, request: Request, op: Operation, document: DocumentNode, operation: OperationDefinitionNode,
        principal: Principal, request_id: str,
    ) -> ExecutionResult:
        if self._catalog is not None and op.query is not None:
            # A catalog read with a plan is answered from it; anything else, or any error, by graphql-core.
            data = await self._catalog.data(op.query, document, operation, op.operation_name, op.variables, principal)
            if data is not None:
                return ExecutionResult(data)
        context = self._context(request, principal, request_id)
        if operation.operation is OperationType.MUTATION:
            context.read_from_primary()  # its answer shows what it wrote
        result = execute(
            self._core,
            document,
            context_value=context,
            variable_values=op.variables,
            operation_name=op.operation_name,
            executor_class=self._executor,
            operation_extensions=op.extensions,
            # Variables that do not coerce say so without spelling out the schema to the public.
            hide_suggestions=not (self._settings.public_introspection or may_see_schema(principal)),
        )
        if not isinstance(result, ExecutionResult):
            result = await result
        return result

    def _throttled(self, refused: Refused, media: str) -> Response:
        body = {"errors": [refused.error()], "extensions": {"cost": refused.cost}}
        response = _json(body, refused.status or _request_error_status(media), media)
        if refused.retry_after is not None:
            response.headers["retry-after"] = str(refused.retry_after)
        return response

    def _refused(self, error: ApiError, media: str, request_id: str) -> Response:
        unauthenticated = error.code is ErrorCode.UNAUTHENTICATED
        body = {
            "errors": format_errors(
                [error], default_code=error.code, request_id=request_id, debug=False
            )
        }
        response = _json(body, 401 if unauthenticated else 403, media)
        if unauthenticated:
            response.headers["www-authenticate"] = 'Bearer realm="quanyi"'
        return response

    def _errors(
        self,
        errors: tuple[GraphQLError, ...] | list[GraphQLError],
        code: ErrorCode,
        media: str,
        request_id: str,
    ) -> Response:
        body = {
            "errors": format_errors(errors, default_code=code, request_id=request_id, debug=False)
        }
        return _json(body, _request_error_status(media), media)

    async def _result(
        self, result: ExecutionResult, document: DocumentNode, operation: OperationDefinitionNode,
        admitted: Admitted, media: str, request_id: str, actual: int | None = None,
    ) -> Response:
        """`actual`: the answer's cost when the caller worked it out; else it is walked here."""
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            # Variables that do not coerce: a request error, not a field error. Nothing ran.
            await self._admission.settle(admitted, 0)
            return self._errors(result.errors, ErrorCode.BAD_USER_INPUT, media, request_id)
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = format_errors(
                result.errors,
                default_code=ErrorCode.INTERNAL_SERVER_ERROR,
                request_id=request_id,
                debug=self._settings.debug,
            )
        if actual is None:
            actual = self._admission.cost.actual(document, operation, result.data)
        body["extensions"] = {"cost": await self._admission.settle(admitted, actual)}
        return _json(body, 200, media)


def _request_error_status(media: str) -> int:
    return 400 if media == GRAPHQL_RESPONSE_JSON else 200


def _internal_error(request_id: str) -> dict[str, Any]:
    error = request_error(MASKED_MESSAGE, ErrorCode.INTERNAL_SERVER_ERROR)
    error["extensions"]["requestId"] = request_id
    return error


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    if 0 < len(given) <= 64 and given.isascii() and given.replace("-", "").isalnum():
        return given
    return uuid.uuid4().hex


def _json(body: dict[str, Any], status: int, media: str, allow: str | None = None) -> Response:
    return _encoded(orjson.dumps(body), status, media, allow)


def _encoded(body: bytes, status: int, media: str, allow: str | None = None) -> Response:
    headers = {"allow": allow} if allow else None
    return Response(body, status, headers, media_type=f"{media}; charset=utf-8")


def _plain(status: int, message: str, allow: str | None = None) -> Response:
    headers = {"allow": allow} if allow else None
    return Response(message, status, headers, media_type="text/plain; charset=utf-8")
