"""GraphiQL for browsers at GET /graphql, every file of it served by the gateway itself.

GraphiQL, React and ReactDOM are vendored in `static/graphiql/` (scripts/vendor-graphiql
brings other versions from the npm registry), so the page works on a machine without
internet access. It is a development tool: on with `QUANYI_GRAPHIQL=1`, `quanyi serve
--demo` or `QUANYI_DEBUG`. When it is off, a browser that opens /graphql gets a short page
that says how to turn it on, and its files are not served at all.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from transport.dashboard import STATIC, StaticFolder

FOLDER = STATIC / "graphiql"
PAGE = "graphiql.html"

# Scripts only from this origin. GraphiQL's components set styles inline, its fonts are
# data: URLs inside its stylesheet, and subscriptions use a socket to this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self' data:; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}

OFF_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="robots" content="noindex"><title>Quanyi · GraphiQL is off</title></head>
<body>
<h1>GraphiQL is off on this gateway</h1>
<p>This address serves the GraphQL API: send queries with <code>POST /graphql</code>
(or <code>GET /graphql?query=…</code>). GraphiQL, the in-browser query editor, is a
development tool and is off unless it is asked for. To turn it on, start the gateway with</p>
<pre>quanyi serve --demo</pre>
<p>or set <code>QUANYI_GRAPHIQL=1</code> in its environment and restart it:</p>
<pre>QUANYI_GRAPHIQL=1 quanyi serve</pre>
<p>Everything GraphiQL needs ships with the gateway, so it works without internet access.</p>
</body>
</html>
"""
OFF_HEADERS = {
    "content-security-policy": "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
}


class GraphiQL:
    """The GraphiQL page and its files when enabled; the page that says how to enable it when not."""

    def __init__(self, enabled: bool, folder: Path = FOLDER) -> None:
        self.enabled = enabled
        self._files = StaticFolder(folder, HEADERS) if enabled else None

    def page(self) -> Response:
        if self._files is None:
            return HTMLResponse(OFF_PAGE, headers=OFF_HEADERS)
        return self._files.response(PAGE)

    async def file(self, request: Request) -> Response:
        if self._files is None:
            return PlainTextResponse("Not Found", status_code=404)
        return self._files.response(request.path_params["name"])

    def routes(self) -> list[BaseRoute]:
        """GET /graphiql/{name}: GraphiQL's scripts, styles and licences."""
        return [Route("/graphiql/{name}", self.file, methods=["GET", "HEAD"])]
