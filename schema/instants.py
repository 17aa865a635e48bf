"""Times on the wire: the `DateTime` scalar, ISO 8601 with a time zone, 2000 to 2099.

It replaces strawberry's own for the whole schema (`resolvers.build_schema`), which takes a
time without an offset and any year: a naive time then fails at the database layer and
year 1 at +08:00 overflows on its way to UTC, both as internal errors. Every DateTime
argument and input field, now and still to come, is refused as BAD_USER_INPUT instead,
named by graphql-core with its variable and path. Output is unchanged (`isoformat()`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dateutil.parser
from graphql import StringValueNode, ValueNode
from strawberry.types.scalar import ScalarDefinition

from domain.instants import InstantError, check_instant
from schema.errors import BadUserInput

ISO_8601 = "a time is an ISO 8601 string with a time zone, e.g. 2026-01-01T00:00:00+08:00"


class TimeRefused(BadUserInput):
    """A DateTime input the gateway does not take; raised while the request's values are coerced."""


def parse_instant_value(value: object) -> datetime:
    if not isinstance(value, str):
        raise TimeRefused(ISO_8601)
    try:
        parsed = dateutil.parser.isoparse(value)
    except (ValueError, OverflowError):
        raise TimeRefused(ISO_8601) from None
    try:
        return check_instant(parsed)
    except InstantError as error:
        raise TimeRefused(str(error)) from None


def parse_instant_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> datetime:
    if not isinstance(node, StringValueNode):
        raise TimeRefused(ISO_8601)
    return parse_instant_value(node.value)


INSTANT = ScalarDefinition(
    name="DateTime",
    description=(
        "A point in time, ISO 8601 with its offset, e.g. 2026-01-01T00:00:00+08:00. As input: a time "
        "zone is required, and the time lies from 2000-01-01 to 2099-12-31 (UTC)."
    ),
    specified_by_url=None,
    serialize=datetime.isoformat,
    parse_value=parse_instant_value,
    parse_literal=parse_instant_literal,
    origin=datetime,
)
