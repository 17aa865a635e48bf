"""Subscriptions and operations over WebSocket on /graphql (graphql-transport-ws, graphql-ws).

strawberry speaks both protocols; what it runs is `transport.operations.Operations`,
so that a document sent over WebSocket meets the same limits, error codes and masking
as one sent over HTTP, and so that the legacy graphql-ws protocol runs queries too.
Each connection is counted in this process's `OpenSockets` (transport/sockets.py): an
address over its cap is refused with 4429, and a connection whose key is revoked or
expires is closed with 4403.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import suppress
from datetime import timedelta
from json import JSONDecodeError
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from strawberry import Schema
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.types.unset import UNSET, UnsetType

from schema.context import Context
from schema.errors import ApiError, Unauthenticated
from transport.admission import Admission
from transport.auth import bearer
from transport.errors import request_error
from transport.operations import Operations
from transport.persisted import PersistedDocuments
from transport.sockets import TOO_MANY, TOO_MANY_REASON, OpenSockets, current
from transport.ws_protocols import LegacyWSHandler, TransportWSHandler

WebSocketContextFactory = Callable[[WebSocket], Awaitable[Context]]
ClientAddress = Callable[[WebSocket], str | None]

# RFC 6455: "a message that is too big for it to process".
MESSAGE_TOO_BIG = 1009
# RFC 6455: "an endpoint is going away, such as a server going down".
GOING_AWAY = 1001


class BoundedMessages(ASGIWebSocketAdapter):
    """strawberry's reading of client messages, refusing one larger than the view's
    `max_message_bytes`: the connection closes with 1009, on either protocol."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        limit: int = self.view.max_message_bytes  # type: ignore[attr-defined]
        open_connections: set[BoundedMessages] = self.view.open_connections  # type: ignore[attr-defined]
        open_connections.add(self)
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                text = await self.ws.receive_text()
                if _larger_than(text, limit):
                    await self.close(MESSAGE_TOO_BIG, f"Message larger than {limit} bytes")
                    return
                try:
                    yield self.view.decode_json(text)
                except JSONDecodeError as error:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from error
        except KeyError as error:  # a binary message: starlette finds no "text" in it
            raise NonTextMessageReceived from error
        except WebSocketDisconnect:
            pass
        finally:
            open_connections.discard(self)


def _larger_than(text: str, limit: int) -> bool:
    # Most messages are far below the limit: count UTF-8 bytes only when it could matter.
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode()) > limit


class GraphQLWebSocket(GraphQL):
    """strawberry's WebSocket handling, with our context, operations and bounded connections.

    The class attributes are the connection policy; a subclass may change them.
    """

    keep_alive = True
    keep_alive_interval: float = 15
    connection_init_wait_timeout = timedelta(seconds=5)
    max_subscriptions_per_connection: int | None = 20
    # A client message is an operation and its variables: 64 KiB is ample, and bounds
    # what one connection can make the process parse.
    max_message_bytes: int = 64 * 1024
    # What a connection may have written to it and not yet taken before it is closed as too
    # slow (transport/outlets.py): some 1,500 stock messages.
    max_unsent_bytes: int = 256 * 1024
    websocket_adapter_class = BoundedMessages  # type: ignore[assignment]
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(
        self, schema: Schema, context: WebSocketContextFactory, admission: Admission | None = None,
        sockets: OpenSockets | None = None, address: ClientAddress | None = None,
        persisted: PersistedDocuments | None = None,
    ) -> None:
        # strawberry's constructor sets these per instance, so they are passed on explicitly.
        super().__init__(
            Operations(schema, admission, persisted),  # type: ignore[arg-type]  # the handlers only stream through it
            graphql_ide=None,
            allow_queries_via_get=False,
            keep_alive=self.keep_alive,
            keep_alive_interval=self.keep_alive_interval,
            connection_init_wait_timeout=self.connection_init_wait_timeout,
            max_subscriptions_per_connection=self.max_subscriptions_per_connection,
        )
        self._context = context
        self._sockets = sockets
        self._address = address or (lambda ws: ws.client.host if ws.client else None)
        self.open_connections: set[BoundedMessages] = set()
        self.accepting = True

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        if self._sockets is None or not self.is_websocket_request(request):
            return await super().run(request, context, root_value)
        socket = self._sockets.open(self._address(request))
        if socket is None:
            # Accepted with the protocol asked for, so that the client can read why it closes.
            await self.create_websocket_response(request, await self.pick_websocket_subprotocol(request))
            await request.close(TOO_MANY, TOO_MANY_REASON)
            return request
        token = current.set(socket)
        try:
            return await super().run(request, context, root_value)
        finally:
            current.reset(token)
            self._sockets.closed(socket)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if not self.accepting:  # the process is stopping: the client should go to another
            await send({"type": "websocket.close", "code": GOING_AWAY})
            return
        await super().__call__(scope, receive, send)

    async def going_away(self) -> None:
        """Refuse new connections and close every open one with 1001: the process is stopping."""
        self.accepting = False
        for connection in list(self.open_connections):
            with suppress(Exception):  # one that closed meanwhile
                await connection.close(GOING_AWAY, "server shutting down")

    def encode_json(self, data: object) -> str:
        # A text frame, as both protocols want, and orjson's encoding: with one stock change
        # going to thousands of subscribers, each one's message is encoded on its own.
        return orjson.dumps(data).decode()

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
            self._authenticated(context)  # by the upgrade request's header, if it had one
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
        self._authenticated(context)
        return UNSET

    def _authenticated(self, context: Context) -> None:
        socket = current.get()
        if self._sockets is not None and socket is not None:
            self._sockets.authenticated(socket, context.principal)


class Refused:
    """The context of a connection whose credentials were refused."""

    def __init__(self, error: ApiError) -> None:
        self.error = error
