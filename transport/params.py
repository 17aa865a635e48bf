"""The parameters of a GraphQL-over-HTTP request: query, operationName, variables, extensions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from transport.errors import MalformedRequest


@dataclass(frozen=True, slots=True)
class Operation:
    query: str | None  # None: a persisted query's hash alone, in extensions.persistedQuery
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None
    # Whether a string of it may hold U+0000 (transport/documents.py refuses those). JSON
    # spells that character only as the escape \u0000, so a body without it holds none.
    nul_possible: bool = True


def operation_from_json(body: bytes) -> Operation:
    """The operation a POST body asks for; the body is a JSON object of parameters."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedRequest("the request body is not valid JSON") from None
    if isinstance(payload, list):
        raise MalformedRequest("batched requests are not supported")
    if not isinstance(payload, dict):
        raise MalformedRequest("the request body must be a JSON object")
    return _operation(payload, nul_possible=b"\\u0000" in body)


def operation_from_query_string(params: Mapping[str, str]) -> Operation:
    """The operation a GET asks for; variables and extensions are URL-encoded JSON."""
    return _operation(
        {
            "query": params.get("query"),
            "operationName": params.get("operationName"),
            "variables": _json_param(params.get("variables"), "variables"),
            "extensions": _json_param(params.get("extensions"), "extensions"),
        }
    )


def _operation(payload: dict[str, Any], *, nul_possible: bool = True) -> Operation:
    query = payload.get("query")
    if query is not None and not isinstance(query, str):
        raise MalformedRequest("query must be a string")
    name = payload.get("operationName")
    if name is not None and not isinstance(name, str):
        raise MalformedRequest("operationName must be a string or null")
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise MalformedRequest("variables must be an object or null")
    extensions = payload.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise MalformedRequest("extensions must be an object or null")
    if query is None and "persistedQuery" not in (extensions or {}):
        raise MalformedRequest("the request has no query")
    # An empty operationName is what some clients send for "none given".
    return Operation(query, variables, name or None, extensions, nul_possible)


def _json_param(raw: str | None, name: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MalformedRequest(f"{name} must be JSON-encoded") from None
