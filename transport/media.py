"""Media types of GraphQL over HTTP: what the client accepts and what it sent."""

from __future__ import annotations

import math

from starlette.requests import ClientDisconnect, Request

from transport.errors import MalformedRequest

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"

# Order matters: on a tie the later type wins only by being named (see media_type_for).
SERVED = (JSON, GRAPHQL_RESPONSE_JSON)


# The answers for the Accept headers seen: a client sends the same one with every request.
_NEGOTIATED: dict[str, str | None] = {}
_NEGOTIATED_KEPT = 256


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when nothing we serve fits
    (`media_type_for`, kept for the headers seen)."""
    if accept is None:
        return JSON
    try:
        return _NEGOTIATED[accept]
    except KeyError:
        pass
    media = media_type_for(accept)
    if len(accept) <= 256:
        if len(_NEGOTIATED) >= _NEGOTIATED_KEPT:
            _NEGOTIATED.clear()
        _NEGOTIATED[accept] = media
    return media


def media_type_for(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when nothing we serve fits.

    Each type we serve takes the quality of the most specific range that matches it
    (RFC 9110 §12.5.1), so `application/json;q=0, */*` refuses JSON but takes
    application/graphql-response+json. A missing Accept header means application/json,
    which legacy clients expect. Between equal qualities, application/graphql-response+json
    wins only when the client named it; wildcards keep legacy clients on application/json.
    """
    if accept is None or not accept.strip():
        return JSON
    ranges = [_media_range(part) for part in accept.split(",")]
    best: tuple[float, bool, str] | None = None
    for media in SERVED:
        quality, named = _quality_of(media, [r for r in ranges if r is not None])
        if quality <= 0:
            continue
        rank = (quality, named and media == GRAPHQL_RESPONSE_JSON, media)
        if best is None or rank[:2] > best[:2]:
            best = rank
    return best[2] if best else None


def _media_range(part: str) -> tuple[str, float] | None:
    media_range, *params = (piece.strip() for piece in part.split(";"))
    if "/" not in media_range:
        return None
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            quality = _qvalue(value.strip())
    return media_range.lower(), quality


def _qvalue(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        return 0.0
    return min(1.0, value) if math.isfinite(value) and value > 0 else 0.0


def _quality_of(media: str, ranges: list[tuple[str, float]]) -> tuple[float, bool]:
    """The quality the most specific matching range gives `media`, and whether it named it."""
    kind = media.split("/")[0]
    for pattern, named in ((media, True), (f"{kind}/*", False), ("*/*", False)):
        qualities = [quality for media_range, quality in ranges if media_range == pattern]
        if qualities:
            return max(qualities), named
    return 0.0, False


class BodyTooLarge(Exception):
    """A request body over its limit, declared or as sent."""


async def bounded_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it passes `limit` bytes: by its declared
    Content-Length before reading, or while streaming, so an oversized body is never held
    whole. ClientDisconnect passes through."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def utf8_json_body(request: Request, limit: int) -> bytes:
    """The POST body, if it is JSON in UTF-8 and within the size limit."""
    content_type = request.headers.get("content-type")
    if not content_type:
        raise MalformedRequest("POST requests need Content-Type: application/json", status=415)
    media, *params = (piece.strip() for piece in content_type.split(";"))
    if media.lower() != JSON:
        raise MalformedRequest("POST requests need Content-Type: application/json", status=415)
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise MalformedRequest("request bodies must be UTF-8", status=415)
    try:
        return await bounded_body(request, limit)
    except BodyTooLarge:
        raise MalformedRequest(f"request bodies are limited to {limit} bytes", status=413) from None
    except ClientDisconnect:
        raise MalformedRequest("the client went away mid-request") from None
