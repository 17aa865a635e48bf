"""Running operations for the WebSocket handlers the way the HTTP endpoint runs them.

strawberry's WebSocket handlers call `schema.stream(...)` (graphql-transport-ws) or
`schema.subscribe(...)` (graphql-ws); `Operations` answers both. Documents go through
the same `Documents` (limits, bounded caches) and errors through `format_errors`
(a code on each, internals masked), and any operation type may run on either protocol.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from inspect import isawaitable
from typing import Any

from graphql import ExecutionResult as CoreResult
from graphql import GraphQLError, OperationType, execute, get_operation_ast, subscribe
from strawberry import Schema
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from config import Limits
from schema.context import Context
from schema.errors import ErrorCode
from transport.documents import NUL_MESSAGE, Documents, has_nul_character
from transport.errors import MASKED_MESSAGE, format_errors, request_error

log = logging.getLogger("quanyi.ws")

Results = AsyncGenerator[ExecutionResult, None]


class Operations:
    """What the WebSocket handlers call where they would call strawberry's schema."""

    def __init__(self, schema: Schema) -> None:
        self._core = schema._schema  # graphql-core schema strawberry built for us
        self._executor = schema.execution_context_class
        # One per configured Limits (in practice one): the caches are what make it cheap.
        self._documents: dict[Limits, Documents] = {}

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
        return self._results(query, variable_values, context_value, root_value, operation_name)

    # The legacy graphql-ws handler asks for a subscription; run whatever the document holds.
    subscribe = stream

    async def _results(
        self, query: Any, variables: Any, context: Context, root_value: Any, operation_name: Any
    ) -> Results:
        shape = _Shaper(context)
        if not isinstance(query, str):
            yield shape.refusal([GraphQLError("query must be a string")])
            return
        if variables is not None and not isinstance(variables, dict):
            yield shape.refusal([GraphQLError("variables must be an object or null")])
            return
        if operation_name is not None and not isinstance(operation_name, str):
            yield shape.refusal([GraphQLError("operationName must be a string or null")])
            return
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
        errors = documents.validate(query, parsed.document)
        if errors:
            yield shape.refusal(errors, ErrorCode.GRAPHQL_VALIDATION_FAILED)
            return
        if has_nul_character(variables):
            yield shape.refusal([GraphQLError(f"variables: {NUL_MESSAGE}")])
            return
        arguments: dict[str, Any] = {
            "context_value": context,
            "root_value": root_value,
            "variable_values": variables,
            "operation_name": operation_name or None,
            "executor_class": self._executor,
        }
        if operation.operation is not OperationType.SUBSCRIPTION:
            result = execute(self._core, parsed.document, **arguments)
            yield shape.result(await result if isawaitable(result) else result)
            return
        source = subscribe(self._core, parsed.document, **arguments)
        events = await source if isawaitable(source) else source
        if not isinstance(events, AsyncIterator):
            yield shape.result(events)
            return
        async with aclosing(events):
            try:
                async for event in events:
                    yield shape.result(event)
            except Exception:
                # The event source failed (a broker gone, a bug): end the stream, say nothing of it.
                log.exception("subscription stream failed (request %s)", context.request_id)
                yield shape.internal_error()

    def _documents_for(self, limits: Limits) -> Documents:
        documents = self._documents.get(limits)
        if documents is None:
            documents = self._documents[limits] = Documents(self._core, limits)
        return documents


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
