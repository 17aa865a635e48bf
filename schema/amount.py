"""How amounts and rates are read from mutation inputs, each in one place.

`AmountInput` is the alias every money input of the product center uses, so a stricter
money scalar replaces it here alone. A commission rate is no amount (0.006 is 0.6%, more
places than any currency has): it is a `Rate`, a decimal string whose range and places the
domain checks (domain/channel_rules.py), never a JSON number.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import NewType, TypeAlias

from strawberry.types.scalar import ScalarDefinition

from schema.errors import BadUserInput

AmountInput: TypeAlias = Decimal

_PLAIN = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,12})?")


def _rate(value: object) -> Decimal:
    if not isinstance(value, str) or not _PLAIN.fullmatch(value):
        raise BadUserInput('a rate is a decimal string such as "0.05" (5%), never a number')
    return Decimal(value)


Rate = NewType("Rate", Decimal)

# Given to the schema as a scalar override (resolvers.build_schema).
RATE = ScalarDefinition(
    name="Rate",
    description='A fraction as a decimal string, e.g. "0.05" for 5%; never a JSON number.',
    specified_by_url=None,
    serialize=str,
    parse_value=_rate,
    parse_literal=None,
    origin=Rate,  # type: ignore[arg-type]
)
