"""Execution plans for catalog reads: a validated document reduced, once, to what it asks of
`products` — each root field's arguments and, per object type, the fields to answer under
their response keys.

graphql-core resolves an answer field by field: for a page of 20 products with their SKUs
that is some 1,400 resolver calls, each with its bookkeeping, several times the cost of the
SQL behind it. A catalog page is shaped the same way for every product and every SKU, so the
selection is collected once per type (fragments spread, inline fragments matched against the
type, `@skip`/`@include` decided with the request's variables, aliases kept) and the answer
is built from plain rows with it (catalog_run.py).

A plan covers the fields listed in FIELDS, with no arguments below the root; a document
asking for anything else (another root field, a field with arguments, `@defer`, fragment
variables, operator-only fields) has no plan, and graphql-core runs it as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_argument_values,
    get_variable_values,
)
from graphql.execution.collect_fields import FieldDetails, FragmentDetails, collect_fields, collect_subfields

# The fields a plan can answer, per object type, and the object type below each that has one.
FIELDS: dict[str, dict[str, str | None]] = {
    "Query": {"products": "ProductConnection", "__typename": None},
    "ProductConnection": {"edges": "ProductEdge", "pageInfo": "PageInfo", "__typename": None},
    "ProductEdge": {"cursor": None, "node": "Product", "__typename": None},
    "PageInfo": {
        "hasNextPage": None, "hasPreviousPage": None, "startCursor": None, "endCursor": None, "__typename": None,
    },
    "Product": {
        "id": None, "slug": None, "name": None, "description": None, "imageUrls": None, "attributes": None,
        "version": None, "archivedAt": None, "brand": "Brand", "category": "Category", "skus": "Sku",
        "__typename": None,
    },
    "Brand": {"id": None, "code": None, "name": None, "version": None, "archivedAt": None, "__typename": None},
    "Category": {"id": None, "code": None, "name": None, "version": None, "archivedAt": None, "__typename": None},
    "Sku": {
        "id": None, "code": None, "name": None, "kind": None, "faceValue": "Money", "price": "Money",
        "priceTiers": "PriceTier", "stock": "Stock", "currency": None, "rechargeAccountFormats": None,
        "serialUses": None, "version": None, "archivedAt": None, "__typename": None,
    },
    "Money": {"amount": None, "currency": None, "__typename": None},
    "Stock": {"available": None, "reserved": None, "presale": None, "__typename": None},
    "PriceTier": {"minQuantity": None, "price": "Money", "__typename": None},
}


@dataclass(frozen=True, slots=True)
class Shape:
    """What to answer of one object type: (response key, field name, shape below or None)."""

    type_name: str
    fields: tuple[tuple[str, str, Shape | None], ...]

    def wants(self, field: str) -> bool:
        return any(name == field for _, name, _ in self.fields)

    def below(self, field: str) -> Shape | None:
        """The shape of `field`'s objects when it is asked for (the first, if under several keys)."""
        return next((shape for _, name, shape in self.fields if name == field), None)


@dataclass(frozen=True, slots=True)
class RootField:
    key: str
    name: str  # "products" or "__typename"
    arguments: dict[str, Any]
    shape: Shape | None


@dataclass(frozen=True, slots=True)
class Plan:
    fields: tuple[RootField, ...]


class NoPlan(Exception):
    """The document asks for something a plan does not cover: graphql-core runs it."""


def plan(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, variables: dict[str, Any] | None,
) -> Plan | None:
    """The plan of a validated query with these variables, or None when it has none (then
    graphql-core runs it, and answers errors in the variables too)."""
    if operation.operation is not OperationType.QUERY:
        return None
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {}, max_errors=1)
    if isinstance(coerced, list):
        return None
    fragments = {
        definition.name.value: FragmentDetails(definition)
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    if any(details.definition.variable_definitions for details in fragments.values()):
        return None
    try:
        return _Planner(schema, fragments, coerced, operation).root()
    except NoPlan:
        return None


class _Planner:
    def __init__(
        self, schema: GraphQLSchema, fragments: dict[str, FragmentDetails], variables: Any,
        operation: OperationDefinitionNode,
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._variables = variables
        self._operation = operation

    def root(self) -> Plan:
        query = self._schema.query_type
        assert query is not None
        collected = collect_fields(self._schema, self._fragments, self._variables, query, self._operation)
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise NoPlan
        fields = []
        for key, details in collected.grouped_field_set.items():
            name = self._field_name(details, "Query")
            if name == "__typename":
                fields.append(RootField(key, name, {}, None))
                continue
            definition = query.fields[name]
            # Validation made every field under one response key ask with the same arguments.
            arguments = get_argument_values(definition, details[0].node, self._variables)
            fields.append(RootField(key, name, arguments, self._shape("ProductConnection", details)))
        if not any(field.name == "products" for field in fields):
            raise NoPlan  # nothing to read: graphql-core answers a bare `__typename`
        return Plan(tuple(fields))

    def _shape(self, type_name: str, details: list[FieldDetails]) -> Shape:
        runtime = self._schema.type_map[type_name]
        assert isinstance(runtime, GraphQLObjectType)
        collected = collect_subfields(self._schema, self._fragments, self._variables, self._operation, runtime, details)
        if collected.new_defer_usages or collected.forbidden_directive_instances:
            raise NoPlan
        fields = []
        for key, below in collected.grouped_field_set.items():
            name = self._field_name(below, type_name)
            if any(d.node.arguments for d in below):
                raise NoPlan
            child = FIELDS[type_name][name]
            fields.append((key, name, self._shape(child, below) if child is not None else None))
        return Shape(type_name, tuple(fields))

    @staticmethod
    def _field_name(details: list[FieldDetails], type_name: str) -> str:
        for detail in details:
            if detail.defer_usage is not None or detail.fragment_variable_values is not None:
                raise NoPlan
        name = details[0].node.name.value
        if name not in FIELDS[type_name]:
            raise NoPlan
        return name

