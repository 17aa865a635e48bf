"""Value literals checked against their types, a refused amount or time named where it was written.

graphql-core reports a scalar's refusal of a literal without saying where it stood; for a
variable it prefixes the variable and path itself. This rule takes the place of its
`ValuesOfCorrectTypeRule` and prefixes the argument (or variable default) and the path in
the document: `input.tiers[1].amount: an amount is written as a string ...`.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    SKIP,
    ArgumentNode,
    GraphQLError,
    GraphQLInputType,
    ValueNode,
    VariableDefinitionNode,
    VisitorAction,
)
from graphql.utilities.validate_input_value import validate_input_literal
from graphql.validation import ValuesOfCorrectTypeRule

from schema.instants import TimeRefused
from schema.money import AmountRefused


class ValuesOfCorrectType(ValuesOfCorrectTypeRule):
    _at = ""

    def enter_argument(self, node: ArgumentNode, *_: Any) -> None:
        self._at = node.name.value

    def enter_variable_definition(self, node: VariableDefinitionNode, *_: Any) -> None:
        self._at = f"${node.variable.name.value}"

    def is_valid_value_node(self, node: ValueNode, input_type: GraphQLInputType | None) -> VisitorAction:
        if input_type:

            def on_error(error: GraphQLError, path: list[str | int]) -> None:
                if isinstance(error, AmountRefused | TimeRefused):
                    where = self._at + "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)
                    error = GraphQLError(f"{where}: {error.message}", node, extensions=error.extensions)
                self.report_error(error)

            validate_input_literal(node, input_type, on_error, None, None, self.context.hide_suggestions)
        return SKIP
