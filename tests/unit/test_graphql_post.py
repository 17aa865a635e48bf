"""POST /graphql past the router: every request is answered as the whole Starlette stack answers it."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from transport.graphql_post import GraphQLPost

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def endpoint(request: Request) -> Response:
    body = await request.body()
    if body == b"bug":
        raise RuntimeError("a bug in the endpoint")
    return PlainTextResponse(f"{request.method} {request.url.path} {body.decode()}", headers={"x-seen": "1"})


def app(direct: bool) -> Starlette:
    middleware = [Middleware(GraphQLPost, handle=endpoint)] if direct else []
    return Starlette(routes=[Route("/graphql", endpoint, methods=ALL_METHODS), Route("/other", endpoint)],
                     middleware=middleware)


async def answer(direct: bool, method: str, path: str, body: bytes, root_path: str = "") -> tuple[int, dict[str, str], bytes]:
    transport = httpx.ASGITransport(app=app(direct), raise_app_exceptions=False, root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://quanyi.test") as client:
        response = await client.request(method, path, content=body)
    return response.status_code, dict(response.headers), response.content


@pytest.mark.parametrize(("method", "path", "body", "root_path"), [
    ("POST", "/graphql", b"{}", ""),
    ("POST", "/graphql", b"bug", ""),  # a 500 from the server-error middleware
    ("GET", "/graphql", b"", ""),
    ("TRACE", "/graphql", b"", ""),  # not a method of the route: 405
    ("POST", "/graphql/", b"{}", ""),  # redirected to /graphql
    ("POST", "/other", b"{}", ""),
    ("POST", "/api/graphql", b"{}", "/api"),
])
async def test_a_request_is_answered_as_the_router_answers_it(method: str, path: str, body: bytes, root_path: str) -> None:
    assert await answer(True, method, path, body, root_path) == await answer(False, method, path, body, root_path)
