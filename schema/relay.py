"""Relay plumbing: the Node interface, global IDs, opaque cursors and page info."""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Sequence

import strawberry
from strawberry.relay import PageInfo, to_base64

from schema.errors import BadUserInput

__all__ = ["Node", "PageInfo", "decode_cursor", "decode_id", "decode_pk", "encode_cursor", "encode_id"]


@strawberry.interface(description="An object with a global ID, fetchable through `node(id:)`.")
class Node:
    id: strawberry.ID


def encode_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(to_base64(type_name, pk))


# One spelling per object: clients cache by ID, so "Product:007" or "Product: 7" must not
# name the same product as "Product:7".
_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PK = re.compile(r"[1-9][0-9]{0,9}")
# Primary keys are INTEGER columns: a larger number names nothing, and PostgreSQL would
# refuse to compare it with them rather than find no row.
_MAX_PK = 2**31 - 1


def decode_id(global_id: str, *, field: str = "id") -> tuple[str, int]:
    """The type name and primary key of a global ID; a malformed ID is the caller's error."""
    decoded = _decoded(global_id) if isinstance(global_id, str) else None
    if decoded is None:
        raise BadUserInput(f"{global_id!r} is not a valid ID", field=field)
    return decoded


@functools.lru_cache(maxsize=4096)  # a sale sends the same few IDs again and again
def _decoded(global_id: str) -> tuple[str, int] | None:
    try:
        text = base64.b64decode(global_id.encode("ascii"), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeError are ValueErrors
        return None
    type_name, _, raw = text.partition(":")
    if not (_TYPE_NAME.fullmatch(type_name) and _PK.fullmatch(raw) and int(raw) <= _MAX_PK):
        return None
    if encode_id(type_name, int(raw)) != global_id:  # e.g. stray padding bits
        return None
    return type_name, int(raw)


_NOUNS = {"Sku": "a SKU", "Order": "an order", "ApiKey": "an API key", "Product": "a product"}


def decode_pk(global_id: str, type_name: str, *, field: str = "id") -> int:
    """The primary key of a global ID that must name a `type_name`; anything else is the caller's error."""
    found, pk = decode_id(global_id, field=field)
    if found != type_name:
        raise BadUserInput(f"{global_id!r} is not {_NOUNS.get(type_name, type_name)} ID", field=field)
    return pk


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


def page_info(cursors: Sequence[str], *, more: bool, after: object | None) -> PageInfo:
    """The page info of a forward page: `cursors` of its edges in order, whether more
    follow, and the `after` it was asked for (any value; None on the first page)."""
    return PageInfo(
        has_next_page=more, has_previous_page=after is not None,
        start_cursor=cursors[0] if cursors else None, end_cursor=cursors[-1] if cursors else None,
    )
