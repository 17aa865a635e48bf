"""Subscriptions and operations over WebSocket on /graphql (graphql-transport-ws, graphql-ws)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from starlette.websockets import WebSocket
from strawberry import Schema
from strawberry.asgi import GraphQL

from schema.context import Context

WebSocketContextFactory = Callable[[WebSocket], Awaitable[Context]]


class GraphQLWebSocket(GraphQL):
    """strawberry's WebSocket handling, with our context and bounded connections."""

    keep_alive = True
    keep_alive_interval = 15
    connection_init_wait_timeout = timedelta(seconds=5)
    max_subscriptions_per_connection = 20

    def __init__(self, schema: Schema, context: WebSocketContextFactory) -> None:
        super().__init__(schema, graphql_ide=None, allow_queries_via_get=False)
        self._context = context

    async def get_context(self, request: Any, response: Any) -> Context:  # type: ignore[override]
        return await self._context(request)
