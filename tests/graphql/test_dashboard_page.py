"""Operators open /dashboard: the page and its files, typed, under a strict Content-Security-Policy."""

from __future__ import annotations

import httpx
import pytest

from transport.dashboard import CONTENT_SECURITY_POLICY

POLICY = "default-src 'self'; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def test_the_policy_allows_this_origin_and_its_socket_only() -> None:
    assert CONTENT_SECURITY_POLICY == POLICY


async def test_the_dashboard_page_is_html_under_the_policy(http: httpx.AsyncClient) -> None:
    response = await http.get("/dashboard")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/static/dashboard.js"></script>' in response.text


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("graphql-socket.js", "text/javascript; charset=utf-8"),
        ("sales-chart.js", "text/javascript; charset=utf-8"),
        ("stock-table.js", "text/javascript; charset=utf-8"),
        ("format.js", "text/javascript; charset=utf-8"),
        ("i18n.js", "text/javascript; charset=utf-8"),
        ("noto-sans-sc.woff2", "font/woff2"),
        ("LICENSE-noto-sans-cjk.txt", "text/plain; charset=utf-8"),
        ("dashboard.css", "text/css; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ],
)
async def test_the_pages_files_are_served_with_their_types(http: httpx.AsyncClient, name: str, content_type: str) -> None:
    response = await http.get(f"/static/{name}")

    assert (response.status_code, response.headers["content-type"]) == (200, content_type)
    assert response.headers["content-security-policy"] == POLICY


@pytest.mark.parametrize("path", ["/static/missing.js", "/static/..%2Fgateway.py", "/static/../gateway.py", "/static/"])
async def test_nothing_outside_the_pages_files_is_served(http: httpx.AsyncClient, path: str) -> None:
    response = await http.get(path)

    assert response.status_code == 404


async def test_the_page_is_only_read(http: httpx.AsyncClient) -> None:
    response = await http.post("/dashboard")

    assert response.status_code == 405
