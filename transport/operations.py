"""Running operations for the WebSocket handlers the way the HTTP endpoint runs them.

strawberry's WebSocket handlers call `schema.stream(...)` (graphql-transport-ws) or
`schema.subscribe(...)` (graphql-ws); `Operations` answers both. Documents go through
the same `Documents` (limits, bounded caches) and errors through `format_errors`
(a code on each, internals masked), and any operation type may run on either protocol.

A subscription whose stream is a `SharedStream` joins the group of subscriptions identical to
it (transport/fanout.py): one task follows the stream for all of them and writes each event's
result, executed and encoded once, to every member's connection. Another subscription event
that a feed hands to many subscribers as one object (a `SharedEvent`) is executed once per
document, variables and caller: the subscribers asking the same of the same event receive
the same result, not one execution each.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncGenerator, Hashable, Iterable
from datetime import UTC, datetime
from functools import partial
from inspect import isawaitable
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLError, OperationType, execute, get_operation_ast
from graphql import ExecutionResult as CoreResult
from graphql.execution import create_source_event_stream, execute_subscription_event
from strawberry import Schema
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from config import Limits
from domain.access import Principal, may_see_schema
from schema.context import Context
from schema.errors import ErrorCode
from schema.live import SharedEvent, SharedStream
from transport import fanout
from transport.admission import Admission, Refused
from transport.documents import NUL_MESSAGE, Documents, has_nul_character
from transport.errors import MASKED_MESSAGE, RequestError, format_errors, request_error
from transport.input_bounds import InputBounds
from transport.metrics import counted_subscription
from transport.persisted import PersistedDocuments

log = logging.getLogger("quanyi.ws")

Results = AsyncGenerator[ExecutionResult, None]


class Operations:
    """What the WebSocket handlers call where they would call strawberry's schema."""

    def __init__(
        self, schema: Schema, admission: Admission | None = None, persisted: PersistedDocuments | None = None
    ) -> None:
        self._core = schema._schema  # graphql-core schema strawberry built for us
        self._admission = admission
        self._persisted = persisted
        self._executor = schema.execution_context_class
        # One per configured Limits (in practice one): the caches are what make it cheap.
        self._documents: dict[Limits, Documents] = {}
        self._bounds = InputBounds(self._core, cache_size=1000)
        self.shared = SharedResults()
        self.groups = fanout.Groups()

    async def stream(
        self,
        query: Any,
        variable_values: Any = None,
        context_value: Context | None = None,
        root_value: Any = None,
        operation_name: Any = None,
        **_: Any,
    ) -> Results:
        assert context_value is not None, "the view always passes its context"
        # Each operation of a connection gets fresh loaders; the connection's caller stays.
        operation_context = context_value.for_operation() if isinstance(context_value, Context) else context_value
        return self._results(query, variable_values, operation_context, root_value, operation_name)

    # The legacy graphql-ws handler asks for a subscription; run whatever the document holds.
    subscribe = stream

    async def _results(
        self, query: Any, variables: Any, context: Context, root_value: Any, operation_name: Any
    ) -> Results:
        shape = _Shaper(context)
        principal: Principal | None = getattr(context, "principal", None)
        if principal is not None and principal.expired(datetime.now(UTC)):
            # The connection closes at the next check; nothing runs under the key meanwhile.
            yield shape.refusal([GraphQLError("the API key has expired")], ErrorCode.UNAUTHENTICATED)
            return
        if not isinstance(query, str):
            yield shape.refusal([GraphQLError("query must be a string")])
            return
        if variables is not None and not isinstance(variables, dict):
            yield shape.refusal([GraphQLError("variables must be an object or null")])
            return
        if operation_name is not None and not isinstance(operation_name, str):
            yield shape.refusal([GraphQLError("operationName must be a string or null")])
            return
        if self._persisted is not None and principal is not None:
            try:
                await self._persisted.check(query, principal)
            except RequestError as error:
                yield shape.refusal([GraphQLError(error.message)], error.code)
                return
        public = not (context.settings.public_introspection or (principal is not None and may_see_schema(principal)))
        documents = self._documents_for(context.settings.limits)
        parsed = documents.parse(query)
        if parsed.document is None:
            yield shape.refusal(parsed.errors, ErrorCode.GRAPHQL_PARSE_FAILED)
            return
        operation = get_operation_ast(parsed.document, operation_name or None)
        if operation is None:
            yield shape.refusal(
                [GraphQLError("give the operationName of one operation in the document")]
            )
            return
        # As over HTTP: the cost first, so a document too costly to run is never validated.
        requested = self._admission.requested(query, parsed.document, operation, variables) if self._admission else 0
        if self._admission is None or requested <= self._admission.max_cost:
            errors = documents.validate(query, parsed.document, public=public)
            if errors:
                yield shape.refusal(errors, ErrorCode.GRAPHQL_VALIDATION_FAILED)
                return
        if has_nul_character(variables):
            yield shape.refusal([GraphQLError(f"variables: {NUL_MESSAGE}")])
            return
        over = self._bounds.check(query, parsed.document, operation, variables)
        if over is not None:
            yield shape.refusal([over])
            return
        if self._admission is not None:
            # The same budget as over HTTP: a subscription pays for its selection once, when it starts.
            try:
                await self._admission.admit(requested, context.principal, context.client_ip)
            except Refused as refused:
                yield shape.refused(refused)
                return
        if operation.operation is OperationType.MUTATION and isinstance(context, Context):
            context.read_from_primary()  # its answer shows what it wrote
        arguments: dict[str, Any] = {
            "context_value": context,
            "root_value": root_value,
            "variable_values": variables,
            "operation_name": operation_name or None,
            "executor_class": self._executor,
            "hide_suggestions": public,
        }
        if operation.operation is not OperationType.SUBSCRIPTION:
            result = execute(self._core, parsed.document, **arguments)
            yield shape.result(await result if isawaitable(result) else result)
            return
        executor = self._executor.build(
            self._core, parsed.document, root_value, context, variables, operation_name or None,
            hide_suggestions=public,
        )
        if isinstance(executor, list):
            yield shape.refusal(executor)
            return
        source = create_source_event_stream(executor)
        events = await source if isawaitable(source) else source
        if isinstance(events, CoreResult):
            yield shape.result(events)
            return
        recipient = fanout.recipient.get()
        if isinstance(events, SharedStream) and recipient is not None:
            key = (events.key, query, _variables_key(variables), operation_name or None,
                   getattr(principal, "visibility", None))
            member = fanout.Member(recipient, shape)
            if recipient.adopt is not None:
                recipient.adopt(member)  # its handler keeps it: this stream ends without a message
                await self.groups.join(key, events, member, partial(self._execute_event, parsed.document, arguments))
                return
            # A parked member keeps this frame: what it holds goes before it waits.
            run = partial(self._execute_event, parsed.document, arguments)
            del executor, source, arguments, context, parsed, documents, operation
            await self.groups.join(key, events, member, run)
            del run
            ended = await member.parked()
            await recipient.outlet.drained()  # its last `next` before its `complete`
            if not ended:
                yield shape.internal_error()
            return
        events = counted_subscription(events)
        asked: Hashable | None = None  # what, besides the event, decides a result
        async with aclosing(events):
            try:
                async for event in events:
                    if not isinstance(event, SharedEvent):
                        yield shape.result(await self._execute_event(parsed.document, arguments, event))
                        continue
                    if asked is None:
                        asked = (query, _variables_key(variables), operation_name, context.principal)
                    delivered = self.shared.get(event, asked)
                    if delivered is None:
                        delivered = shape.result(await self._execute_event(parsed.document, arguments, event))
                        # A result with errors names this connection's request: it is not shared.
                        if not delivered.errors:
                            self.shared.put(event, asked, delivered)
                    yield delivered
            except Exception:
                # The event source failed (a broker gone, a bug): end the stream, say nothing of it.
                log.exception("subscription stream failed (request %s)", context.request_id)
                yield shape.internal_error()

    async def _execute_event(self, document: DocumentNode, arguments: dict[str, Any], event: object) -> CoreResult:
        # An executor of its own for each event: graphql-core's per-event copies share one
        # memo of sub-selections that gains an entry per event and is never emptied.
        executor = self._executor.build(
            self._core, document, event, arguments["context_value"], arguments["variable_values"],
            arguments["operation_name"], hide_suggestions=arguments["hide_suggestions"],
        )
        if isinstance(executor, list):
            return CoreResult(None, executor)
        result = execute_subscription_event(executor)
        return await result if isawaitable(result) else result

    def _documents_for(self, limits: Limits) -> Documents:
        documents = self._documents.get(limits)
        if documents is None:
            documents = self._documents[limits] = Documents(self._core, limits)
        return documents


class SharedResults:
    """Results of shared events, each kept while its event lives.

    Keyed by the event's identity and by what else decides the result (document, variables,
    operation name, caller). A weak reference removes an event's results when the event is
    freed, once no feed, inbox or stream holds it, so they never outlive what they describe.
    """

    def __init__(self) -> None:
        self._by_event: dict[int, dict[Hashable, ExecutionResult]] = {}

    def get(self, event: object, asked: Hashable) -> ExecutionResult | None:
        results = self._by_event.get(id(event))
        return results.get(asked) if results is not None else None

    def put(self, event: object, asked: Hashable, result: ExecutionResult) -> None:
        results = self._by_event.get(id(event))
        if results is None:
            results = self._by_event[id(event)] = {}
            # Runs when the event is freed, before its id can name another object.
            weakref.finalize(event, self._by_event.pop, id(event), None)
        results[asked] = result

    def __len__(self) -> int:
        return len(self._by_event)


def _variables_key(variables: dict[str, Any] | None) -> str:
    # A str: orjson's bytes keep the capacity of its output buffer (4 KB), and every
    # subscriber of a group holds its key while it is subscribed.
    return orjson.dumps(variables, option=orjson.OPT_SORT_KEYS).decode()


class _Shaper:
    """Errors in the form the HTTP endpoint gives them."""

    def __init__(self, context: Context) -> None:
        self._request_id = context.request_id
        self._debug = context.settings.debug

    def refusal(
        self, errors: Iterable[GraphQLError], code: ErrorCode = ErrorCode.BAD_USER_INPUT
    ) -> PreExecutionError:
        """The operation does not run: the handlers answer with an `error` message."""
        return PreExecutionError(None, self._shaped(errors, code, debug=False))

    def refused(self, refused: Refused) -> PreExecutionError:
        """Refused by admission control: its code, and how long to wait when throttled."""
        return PreExecutionError(None, [ShapedError(refused.error())])

    def result(self, result: CoreResult) -> ExecutionResult:
        if result.data is None and result.errors and all(e.path is None for e in result.errors):
            # Variables that do not coerce: a request error, as over HTTP.
            return self.refusal(result.errors)
        errors = self._shaped(
            result.errors or (), ErrorCode.INTERNAL_SERVER_ERROR, debug=self._debug
        )
        return ExecutionResult(result.data, errors or None)

    def internal_error(self) -> ExecutionResult:
        error = request_error(MASKED_MESSAGE, ErrorCode.INTERNAL_SERVER_ERROR)
        error["extensions"]["requestId"] = self._request_id
        return ExecutionResult(None, [ShapedError(error)])

    def _shaped(
        self, errors: Iterable[GraphQLError], code: ErrorCode, *, debug: bool
    ) -> list[GraphQLError]:
        formatted = format_errors(
            errors, default_code=code, request_id=self._request_id, debug=debug
        )
        return [ShapedError(entry) for entry in formatted]


class ShapedError(GraphQLError):
    """An error whose client-facing form is decided; the handlers send its `formatted`."""

    def __init__(self, formatted: dict[str, Any]) -> None:
        super().__init__(formatted["message"])
        self._shape = formatted

    @property
    def formatted(self) -> dict[str, Any]:  # type: ignore[override]
        return self._shape
