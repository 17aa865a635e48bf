"""Relay plumbing: the Node interface, global IDs, opaque cursors and page info."""

from __future__ import annotations

import strawberry
from strawberry.relay import PageInfo, from_base64, to_base64

from schema.errors import BadUserInput

__all__ = ["Node", "PageInfo", "decode_cursor", "decode_id", "encode_cursor", "encode_id"]


@strawberry.interface(description="An object with a global ID, fetchable through `node(id:)`.")
class Node:
    id: strawberry.ID


def encode_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(to_base64(type_name, pk))


def decode_id(global_id: str, *, field: str = "id") -> tuple[str, int]:
    """The type name and primary key of a global ID; a malformed ID is the caller's error."""
    try:
        type_name, raw = from_base64(global_id)
        pk = int(raw)
    except (ValueError, TypeError):
        raise BadUserInput(f"{global_id!r} is not a valid ID", field=field) from None
    if pk <= 0 or pk > 2**63 - 1:
        raise BadUserInput(f"{global_id!r} is not a valid ID", field=field)
    return type_name, pk


def encode_cursor(kind: str, position: int) -> str:
    return to_base64(f"{kind}Cursor", position)


def decode_cursor(cursor: str, kind: str) -> int:
    type_name, position = decode_id(cursor, field="after")
    if type_name != f"{kind}Cursor":
        raise BadUserInput(f"{cursor!r} is not a cursor of this list", field="after")
    return position


def page_size(first: int | None, *, default: int, maximum: int) -> int:
    if first is None:
        return default
    if first < 0 or first > maximum:
        raise BadUserInput(f"first must be between 0 and {maximum}", field="first")
    return first
