"""POST /graphql straight to its endpoint, past the layers that have nothing to decide for it.

Below the middleware, Starlette hands a request to the exception middleware, the router,
the route and its request-response wrapper before it reaches `GraphQLEndpoint.handle`: for
POST /graphql (placeOrder, nearly every request of a sale) they decide nothing. The router
finds the first route, `/graphql`, which takes POST; the two exception wrappers turn an
`HTTPException` into an answer, and `handle` raises none (it answers every error itself,
a bug as a masked 500); anything else they pass up, to `Observe` and Starlette's
server-error middleware, as this does. So this middleware, innermost, makes the Request and
awaits the response itself. Every other request goes the whole way, as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

PATH = "/graphql"


class GraphQLPost:
    def __init__(self, app: ASGIApp, handle: Callable[[Request], Awaitable[Response]]) -> None:
        self.app = app
        self._handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Exactly the requests the router gives the /graphql route with POST: no root path
        # (it would match against the path without it).
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != PATH or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        response = await self._handle(Request(scope, receive, send))
        await response(scope, receive, send)
