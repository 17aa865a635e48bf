"""Money on the wire: a decimal string amount and its currency, never a float.

Amounts come in as the `Decimal` scalar below, which replaces strawberry's own for the
whole schema (`resolvers.build_schema`): strawberry's would take `1e3`, `1_000`,
` 9.90 `, non-ASCII digits and JSON numbers and convert them before any rule saw the
text. Every `Decimal` argument or input field is therefore money, now and in the inputs
still to come (`basePrice`, `amountOff`, `budget`, ...); a rate with more places needs a
scalar of its own. Output is unchanged: `str(Decimal)`, e.g. "9.90".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import strawberry
from graphql import FloatValueNode, IntValueNode, StringValueNode, ValueNode
from strawberry.types.scalar import ScalarDefinition

from domain import money
from schema.errors import BadUserInput


@strawberry.type(description="An exact amount: `amount` is a decimal string such as \"9.90\".")
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def of(cls, value: money.Money) -> Money:
        return cls(amount=value.amount, currency=value.currency)

    @classmethod
    def fen(cls, minor: int, currency: str) -> Money:
        return cls.of(money.Money(minor, currency))


class AmountRefused(BadUserInput):
    """A money input that is not an amount as the contract writes it. Raised while the
    request's values are coerced, so graphql-core prefixes the variable and its path."""


def parse_amount_value(value: object) -> Decimal:
    """An amount from a JSON variable: a string such as "9.90", never a JSON number."""
    if not isinstance(value, str):
        kind = "a JSON number" if isinstance(value, int | float) and not isinstance(value, bool) else "that"
        raise AmountRefused(f'an amount is sent as a string such as "9.90", not as {kind}')
    try:
        return money.parse_amount(value)
    except money.MoneyError as error:
        raise AmountRefused(str(error)) from None


def parse_amount_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> Decimal:
    """An amount written in the document: a string literal, never a number literal."""
    if isinstance(node, StringValueNode):
        return parse_amount_value(node.value)
    kind = "a number" if isinstance(node, IntValueNode | FloatValueNode) else "that"
    raise AmountRefused(f'an amount is written as a string such as "9.90", not as {kind}')


AMOUNT = ScalarDefinition(
    name="Decimal",
    description=(
        'An exact amount as a decimal string, e.g. "9.90". As input: ASCII digits, an optional '
        "leading minus, at most two decimal places and at most 10,000,000,000.00; never a number, "
        "an exponent or spaces."
    ),
    specified_by_url=None,
    serialize=str,
    parse_value=parse_amount_value,
    parse_literal=parse_amount_literal,
    origin=Decimal,
)
