"""placeOrder without graphql-core's executor: a document compiled once, answered the same.

In a flash sale every request is the same small document, `placeOrder(input: $input)`
with a few fields of its payload. graphql-core and strawberry spend more of such a request
than the order's own work: coercing the variables, converting the input, completing the
payload field by field. Once a document has parsed and validated, `CompiledMutations`
looks at it once: if it is a single placeOrder whose input is one variable and whose
selection `answer_shape.py` can shape exactly as graphql-core would, it is kept as a
`PlaceOrderPlan`. A request of it then calls the resolver's own function
(resolvers.orders.place_order) with the input built from the variables and shapes its
payload; everything around it, authentication, budgets, input bounds, the cost in
`extensions`, the request log and metrics, is the HTTP view's, as for any request.

Anything else runs through graphql-core: a document of another shape, and a request whose
variables are not plainly of the input's types (a number for an ID, a missing field, an
unknown one), so graphql-core's own coercion and its errors answer those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    BooleanValueNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLInputObjectType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    located_error,
)

from resolvers.orders import place_order, place_order_input
from schema.context import Context
from transport.answer_shape import CONDITIONS, FieldFailed, Shape, shapeable
from transport.cost import QueryCost
from transport.documents import BoundedCache

ROOT_FIELD = "placeOrder"
# PlaceOrderInput as this module coerces it; a schema whose input differs compiles nothing.
INPUT_FIELDS = {
    "PlaceOrderInput": ({"channel", "idempotencyKey", "lines", "buyer"}, {"couponCode"}),
    "OrderLineInput": ({"skuId", "quantity"}, set()),
    "BuyerInput": (set(), {"phone", "email", "rechargeAccount", "deviceId"}),
}
INPUT_KEYS = frozenset({"channel", "idempotencyKey", "lines", "buyer", "couponCode"})
REQUIRED_KEYS = frozenset({"channel", "idempotencyKey", "lines", "buyer"})
LINE_KEYS = frozenset({"skuId", "quantity"})
BUYER_KEYS = frozenset({"phone", "email", "rechargeAccount", "deviceId"})
INT_RANGE = range(-(2**31), 2**31)


class PlaceOrderPlan:
    """One placeOrder document, compiled: which variable is the input, which decide
    `@skip`/`@include`, and the selection to shape."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode,
                 input_variable: str, conditions: dict[str, tuple[bool, bool | None]], cost: QueryCost) -> None:
        self._mutation: GraphQLObjectType = schema.mutation_type  # type: ignore[assignment]
        self._field = self._mutation.fields[ROOT_FIELD]
        self._operation = operation
        self._input = input_variable
        self._conditions = conditions  # name: (nullable, default)
        self._fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self._actual = cost.compiled_actual(document, operation)
        self._cost = cost
        self._document = document

    def actual_cost(self, data: Any) -> int:
        """The answer's actual cost, by the rules of transport/cost.py."""
        if self._actual is None:
            return self._cost.actual(self._document, self._operation, data)
        return self._actual.of(data)

    def variables(self, given: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The variables as graphql-core would coerce them, or None to leave it to it."""
        given = given or {}
        value = given.get(self._input)
        if not _plain_input(value):
            return None
        coerced: dict[str, Any] = {self._input: value}
        for name, (_nullable, default) in self._conditions.items():
            # `if:` takes a Boolean!: a null or missing one is graphql-core's error to answer.
            flag = given[name] if name in given else default
            if type(flag) is not bool:
                return None
            coerced[name] = flag
        return coerced

    async def execute(self, context: Callable[[], Context], variables: dict[str, Any]) -> ExecutionResult:
        """The answer graphql-core would give, placing the order at most once."""
        built = context()
        shape = Shape(self._fragments, variables, built)
        data: dict[str, Any] = {}
        for key, nodes in shape.collect(self._mutation, [self._operation.selection_set]).items():
            if nodes[0].name.value == "__typename":
                data[key] = self._mutation.name
                continue
            try:
                payload = await place_order(built, place_order_input(variables[self._input]))
                data[key] = await shape.complete(self._field.type, nodes, (key,), payload, self._mutation, ROOT_FIELD)
            except FieldFailed:
                return ExecutionResult(None, shape.errors)  # placeOrder is non-null: so is nothing above it
            except Exception as error:
                shape.errors.append(located_error(error, nodes, [key]))
                return ExecutionResult(None, shape.errors)
        return ExecutionResult(data, shape.errors or None)


class CompiledMutations:
    """The plans of the documents seen, by document text (None: not compilable)."""

    def __init__(self, schema: GraphQLSchema, cost: QueryCost, *, cache_size: int) -> None:
        self._schema = schema
        self._cost = cost
        self._usable = _input_as_expected(schema)
        self._plans: BoundedCache[tuple[str, str | None], PlaceOrderPlan | bool] = BoundedCache(cache_size)

    def plan(self, query: str, document: DocumentNode, operation: OperationDefinitionNode) -> PlaceOrderPlan | None:
        """The document's plan, for a validated document; None runs it through graphql-core."""
        if not self._usable or operation.operation is not OperationType.MUTATION:
            return None
        key = (query, operation.name.value if operation.name else None)
        found = self._plans.get(key)
        if found is None:
            found = _compile(self._schema, self._cost, document, operation) or False
            self._plans.put(key, found)
        return found or None


def _compile(
    schema: GraphQLSchema, cost: QueryCost, document: DocumentNode, operation: OperationDefinitionNode,
) -> PlaceOrderPlan | None:
    mutation = schema.mutation_type
    if mutation is None or operation.directives:
        return None
    roots = [s for s in operation.selection_set.selections]
    if not all(isinstance(s, FieldNode) for s in roots):
        return None
    places = [s for s in roots if isinstance(s, FieldNode) and s.name.value != "__typename"]
    keys = {(s.alias or s.name).value for s in places}
    if len(keys) != 1 or any(s.name.value != ROOT_FIELD for s in places):
        return None  # one placeOrder, however often it is written under its one key
    if any(d.name.value not in CONDITIONS for s in roots for d in s.directives or ()):
        return None
    inputs = set()
    for field in places:
        arguments = field.arguments or ()
        if len(arguments) != 1 or arguments[0].name.value != "input" or not isinstance(arguments[0].value, VariableNode):
            return None
        inputs.add(arguments[0].value.name.value)
    if len(inputs) != 1:
        return None
    (input_variable,) = inputs
    conditions: dict[str, tuple[bool, bool | None]] = {}
    for definition in operation.variable_definitions or ():
        name, type_ = definition.variable.name.value, definition.type
        if definition.directives:
            return None
        if name == input_variable:
            if not (isinstance(type_, NonNullTypeNode) and type_.type.name.value == "PlaceOrderInput"):  # type: ignore[union-attr]
                return None
            continue
        nullable = isinstance(type_, NamedTypeNode)
        named = type_ if nullable else type_.type  # type: ignore[union-attr]
        if not isinstance(named, NamedTypeNode) or named.name.value != "Boolean":
            return None
        default = definition.default_value
        if default is not None and not isinstance(default, BooleanValueNode):
            return None
        conditions[name] = (nullable, default.value if isinstance(default, BooleanValueNode) else None)
    payload = mutation.fields[ROOT_FIELD].type
    if not isinstance(payload, GraphQLNonNull) or not isinstance(payload.of_type, GraphQLObjectType):
        return None
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    for field in places:
        if field.selection_set is None or not shapeable(schema, payload.of_type, field.selection_set, fragments):
            return None
    return PlaceOrderPlan(schema, document, operation, input_variable, conditions, cost)


def _plain_input(value: Any) -> bool:
    """A PlaceOrderInput value graphql-core would pass as it is: every field of its own type."""
    if type(value) is not dict or not value.keys() <= INPUT_KEYS or not REQUIRED_KEYS <= value.keys():
        return False
    coupon = value.get("couponCode")
    if type(value["channel"]) is not str or type(value["idempotencyKey"]) is not str:
        return False
    if coupon is not None and type(coupon) is not str:
        return False
    lines, buyer = value["lines"], value["buyer"]
    if type(lines) is not list or type(buyer) is not dict or not buyer.keys() <= BUYER_KEYS:
        return False
    for line in lines:
        if type(line) is not dict or line.keys() != LINE_KEYS:
            return False
        if type(line["skuId"]) is not str or type(line["quantity"]) is not int or line["quantity"] not in INT_RANGE:
            return False
    return all(item is None or type(item) is str for item in buyer.values())


def _input_as_expected(schema: GraphQLSchema) -> bool:
    """Whether the schema's order input is the one `_plain_input` knows, field for field."""
    for name, (required, optional) in INPUT_FIELDS.items():
        type_ = schema.get_type(name)
        if not isinstance(type_, GraphQLInputObjectType):
            return False
        fields = type_.fields
        if set(fields) != required | optional:
            return False
        if any(not isinstance(fields[f].type, GraphQLNonNull) for f in required):
            return False
        if any(isinstance(fields[f].type, GraphQLNonNull) for f in optional):
            return False
    return True
