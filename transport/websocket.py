"""Subscriptions and operations over WebSocket on /graphql (graphql-transport-ws, graphql-ws).

strawberry speaks both protocols; what it runs is `transport.operations.Operations`,
so that a document sent over WebSocket meets the same limits, error codes and masking
as one sent over HTTP, and so that the legacy graphql-ws protocol runs queries too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from starlette.websockets import WebSocket
from strawberry import Schema
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UNSET, UnsetType

from schema.context import Context
from schema.errors import ApiError, Unauthenticated
from transport.auth import bearer
from transport.errors import request_error
from transport.operations import Operations

WebSocketContextFactory = Callable[[WebSocket], Awaitable[Context]]


class GraphQLWebSocket(GraphQL):
    """strawberry's WebSocket handling, with our context, operations and bounded connections.

    The class attributes are the connection policy; a subclass may change them.
    """

    keep_alive = True
    keep_alive_interval: float = 15
    connection_init_wait_timeout = timedelta(seconds=5)
    max_subscriptions_per_connection: int | None = 20

    def __init__(self, schema: Schema, context: WebSocketContextFactory) -> None:
        # strawberry's constructor sets these per instance, so they are passed on explicitly.
        super().__init__(
            Operations(schema),  # type: ignore[arg-type]  # the handlers only stream through it
            graphql_ide=None,
            allow_queries_via_get=False,
            keep_alive=self.keep_alive,
            keep_alive_interval=self.keep_alive_interval,
            connection_init_wait_timeout=self.connection_init_wait_timeout,
            max_subscriptions_per_connection=self.max_subscriptions_per_connection,
        )
        self._context = context

    async def get_context(self, request: Any, response: Any) -> Context | Refused:  # type: ignore[override]
        try:
            return await self._context(request)
        except ApiError as error:
            # The socket is already open: refuse at connection_init, as both protocols expect.
            return Refused(error)

    async def on_ws_connect(  # type: ignore[override]
        self, context: Context | Refused
    ) -> UnsetType | dict[str, object] | None:
        if isinstance(context, Refused):
            raise ConnectionRejectionError(request_error(context.error.message, context.error.code))
        params = getattr(context, "connection_params", None) or {}
        given = params.get("authorization", params.get("Authorization"))
        if given is None:
            return UNSET
        try:
            credential = bearer(given) if isinstance(given, str) else None
            if credential is None:
                raise Unauthenticated("use {\"authorization\": \"Bearer <key>\"}")
            principal = await context.authenticator.principal(credential)
            if principal is None:
                raise Unauthenticated("unknown or revoked key")
        except ApiError as error:
            raise ConnectionRejectionError(request_error(error.message, error.code)) from None
        # The payload's credential speaks for the whole connection.
        context.principal = principal
        return UNSET


class Refused:
    """The context of a connection whose credentials were refused."""

    def __init__(self, error: ApiError) -> None:
        self.error = error
