"""Media types of GraphQL over HTTP: what the client accepts and what it sent."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"

# What each Accept range means for us; `*/*` keeps legacy clients on application/json.
_RANGES = {
    GRAPHQL_RESPONSE_JSON: GRAPHQL_RESPONSE_JSON,
    JSON: JSON,
    "application/*": JSON,
    "*/*": JSON,
}


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when nothing we serve fits.

    No Accept header means application/json, as the spec asks for legacy clients.
    Among equally preferred types, application/graphql-response+json wins.
    """
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        media_range, *params = (piece.strip() for piece in part.split(";"))
        media = _RANGES.get(media_range.lower())
        if media is None:
            continue
        quality = _quality(params)
        if quality <= 0:
            continue
        rank = (quality, 1 if media == GRAPHQL_RESPONSE_JSON and media_range != "*/*" else 0, media)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return best[2] if best else None


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


@dataclass(frozen=True, slots=True)
class Body:
    content: bytes = b""
    failure: tuple[int, str] | None = None


async def utf8_json_body(request: Request, limit: int) -> Body:
    """The POST body, if it is JSON in UTF-8 and within the size limit."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return Body(failure=(415, "POST requests need Content-Type: application/json"))
    media, *params = (piece.strip() for piece in content_type.split(";"))
    if media.lower() != JSON:
        return Body(failure=(415, "POST requests need Content-Type: application/json"))
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return Body(failure=(415, "request bodies must be UTF-8"))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return Body(failure=(413, f"request bodies are limited to {limit} bytes"))
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return Body(failure=(413, f"request bodies are limited to {limit} bytes"))
            chunks.append(chunk)
    except ClientDisconnect:
        return Body(failure=(400, "the client went away mid-request"))
    return Body(content=b"".join(chunks))
