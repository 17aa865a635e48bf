"""The gateway application: create_app(settings) and the `quanyi` command entry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from broker import connect
from config import Settings
from resolvers import build_schema
from resolvers.loaders import Loaders
from schema.context import Context
from services.database import Database
from transport.auth import principal_for
from transport.graphql_http import GraphQLEndpoint
from transport.health import healthz, readyz
from transport.response_cache import ResponseCache, run_follower
from transport.websocket import GraphQLWebSocket

log = logging.getLogger("quanyi")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    db = Database.connect(settings)
    broker = connect(settings.redis_url, prefix=settings.broker_prefix)
    cache = ResponseCache(settings.response_cache_seconds) if settings.response_cache else None
    schema = build_schema()

    async def http_context(request: Request, request_id: str) -> Context:
        principal = await principal_for(request.headers)
        return Context(settings, db, Loaders.create(db), principal, request_id)

    async def ws_context(websocket: WebSocket) -> Context:
        principal = await principal_for(websocket.headers)
        return Context(settings, db, Loaders.create(db), principal, "ws")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await broker.start()
        follower = asyncio.create_task(run_follower(cache, broker)) if cache else None
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            await broker.close()
            await db.dispose()

    endpoint = GraphQLEndpoint(schema, settings, http_context)
    routes = [
        Route("/graphql", endpoint.handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        WebSocketRoute("/graphql", GraphQLWebSocket(schema, ws_context)),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.settings = settings
    app.state.db = db
    app.state.broker = broker
    app.state.response_cache = cache
    return app


def main() -> None:
    from cli import run

    run()
