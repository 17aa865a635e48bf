"""The /dashboard page, the /shop demo storefront, and their files under /static, served with a strict Content-Security-Policy.

The page is plain HTML, CSS and JavaScript from `static/`: no CDN, no inline script or
style, so the policy can forbid everything but this origin. Only files present in the
folder when the app starts, with a known type, are served; a name is never joined to
a path, so nothing outside the folder can be asked for.
"""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

log = logging.getLogger("quanyi.dashboard")

STATIC = Path(__file__).resolve().parent.parent / "static"
PAGE = "dashboard.html"
SHOP = "shop.html"  # the demo H5 storefront

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}

# Scripts, styles, images and the GraphQL socket come from this origin only; the socket
# is ws: or wss: depending on how the page was reached, which 'self' alone does not
# cover in every browser.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    # Revalidate each time: a new release must not meet a cached older script.
    "cache-control": "no-cache",
}


class StaticFolder:
    """The files of one folder, by name, each with its content type."""

    def __init__(self, folder: Path, headers: dict[str, str] = HEADERS) -> None:
        self._files: dict[str, Path] = {}
        self._headers = headers
        if not folder.is_dir():
            log.warning("%s is missing: its pages answer 404", folder)
            return
        for path in folder.iterdir():
            if path.is_file() and path.suffix in CONTENT_TYPES:
                self._files[path.name] = path

    def response(self, name: str) -> Response:
        path = self._files.get(name)
        if path is None:
            return PlainTextResponse("Not Found", status_code=404, headers={"x-content-type-options": "nosniff"})
        return FileResponse(path, media_type=CONTENT_TYPES[path.suffix], headers=self._headers)

    async def page(self, request: Request) -> Response:
        return self.response(PAGE)

    async def shop(self, request: Request) -> Response:
        return self.response(SHOP)

    async def file(self, request: Request) -> Response:
        return self.response(request.path_params["name"])


def dashboard_routes(folder: Path = STATIC) -> list[BaseRoute]:
    """GET /dashboard (the page), GET /shop (the demo storefront) and GET /static/{name} (their
    scripts, styles and icon)."""
    files = StaticFolder(folder)
    return [
        Route("/dashboard", files.page, methods=["GET", "HEAD"]),
        Route("/shop", files.shop, methods=["GET", "HEAD"]),
        Route("/static/{name}", files.file, methods=["GET", "HEAD"]),
    ]
