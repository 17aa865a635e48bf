"""Strings no longer than their inputs take, checked before an operation runs.

Every argument of every field the operation selects is walked with its GraphQL type, into
input objects and lists, whether written in the document or sent as a variable; a String or
ID longer than its bound (`transport/input_limits.py`) refuses the whole request as
BAD_USER_INPUT, naming the field by its path (`input.buyer.email`). Nothing has run, so
nothing is written, and PostgreSQL and SQLite answer alike.

Where the arguments sit depends on the document alone, so it is worked out once per document
text (a bounded cache, as parsing is); a request then looks only at those places, with its
variables. A document without variables answers the same every time: its answer is kept too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_named_type,
)

from transport.documents import BoundedCache
from transport.input_limits import ID_LENGTH, LIMITS, STRING_LENGTH, Bound

_DEFAULTS = {"ID": Bound(ID_LENGTH), "String": Bound(STRING_LENGTH)}


@dataclass(frozen=True, slots=True)
class _Site:
    """One argument of one selected field: where it is, what it is, what was written for it."""

    path: str  # the argument's name, as the error names it
    coordinate: str  # Type.field(argument:)
    type: GraphQLInputType
    value: ValueNode


@dataclass(frozen=True, slots=True)
class _Plan:
    sites: tuple[_Site, ...]
    defaults: Mapping[str, ValueNode]  # variables' default values
    fixed: GraphQLError | None  # the answer, when no site reads a variable
    reads_variables: bool


class InputBounds:
    """Refuses a request whose strings are longer than their inputs take."""

    def __init__(self, schema: GraphQLSchema, *, cache_size: int, limits: Mapping[str, Bound] = LIMITS) -> None:
        self._schema = schema
        self._limits = limits
        self._plans: BoundedCache[tuple[str, str | None], _Plan] = BoundedCache(cache_size)
        # Each input object's fields: their types and coordinates, as `_any_over` looks them up.
        self._fields: dict[str, dict[str, tuple[GraphQLInputType, str]]] = {}

    def check(
        self, query: str, document: DocumentNode, operation: OperationDefinitionNode, variables: Mapping[str, Any] | None
    ) -> GraphQLError | None:
        """The first input over its bound, as an error; None when every one is within."""
        key = (query, operation.name.value if operation.name else None)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plan(document, operation)
            self._plans.put(key, plan)
        if not plan.reads_variables:
            return plan.fixed
        return self._first_over(plan, variables or {})

    def _plan(self, document: DocumentNode, operation: OperationDefinitionNode) -> _Plan:
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        root = self._schema.get_root_type(operation.operation)
        sites = tuple(_sites(self._schema, root, operation.selection_set, fragments, set()))
        defaults = {
            d.variable.name.value: d.default_value for d in operation.variable_definitions or () if d.default_value
        }
        reads = any(_reads_variables(site.value) for site in sites)
        plan = _Plan(sites, defaults, None, reads)
        if reads:
            return plan
        return _Plan(sites, defaults, self._first_over(plan, {}), False)

    def _first_over(self, plan: _Plan, variables: Mapping[str, Any]) -> GraphQLError | None:
        for site in plan.sites:
            value = site.value
            if isinstance(value, VariableNode) and value.name.value in variables:
                # A variable within its bounds, as nearly every one is, is passed by a walk that
                # names nothing; only one with a string over its bound is walked again for the path.
                if not self._any_over(variables[value.name.value], site.type, site.coordinate):
                    continue
            found = self._in_node(value, site.type, site.coordinate, site.path, variables, plan.defaults)
            if found is not None:
                return found
        return None

    def _any_over(self, value: Any, type_: GraphQLInputType, coordinate: str) -> bool:
        """Whether `_in_value` would find a string over its bound in `value`, without the paths."""
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(type_, GraphQLInputObjectType):
            if not isinstance(value, dict):
                return False
            fields = self._fields.get(type_.name)
            if fields is None:
                fields = self._fields[type_.name] = {
                    name: (definition.type, f"{type_.name}.{name}") for name, definition in type_.fields.items()
                }
            for name, item in value.items():
                field = fields.get(name)
                if field is not None and self._any_over(item, field[0], field[1]):
                    return True
            return False
        if isinstance(type_, GraphQLList):
            items = value if isinstance(value, list) else [value]
            return any(self._any_over(item, type_.of_type, coordinate) for item in items)
        return isinstance(value, str) and self._too_long(value, type_, coordinate)

    def _in_node(
        self, node: ValueNode, type_: GraphQLInputType, coordinate: str, path: str,
        variables: Mapping[str, Any], defaults: Mapping[str, ValueNode],
    ) -> GraphQLError | None:
        if isinstance(node, VariableNode):
            name = node.name.value
            if name in variables:
                return self._in_value(variables[name], type_, coordinate, path)
            default = defaults.get(name)
            return self._in_node(default, type_, coordinate, path, {}, {}) if default is not None else None
        type_ = _nullable(type_)
        if isinstance(type_, GraphQLList):
            items = node.values if isinstance(node, ListValueNode) else (node,)
            for index, item in enumerate(items):
                found = self._in_node(item, type_.of_type, coordinate, f"{path}[{index}]", variables, defaults)
                if found is not None:
                    return found
            return None
        if isinstance(type_, GraphQLInputObjectType):
            if not isinstance(node, ObjectValueNode):
                return None
            for field in node.fields:
                name = field.name.value
                definition = type_.fields.get(name)
                if definition is not None:
                    found = self._in_node(field.value, definition.type, f"{type_.name}.{name}", f"{path}.{name}",
                                          variables, defaults)
                    if found is not None:
                        return found
            return None
        if isinstance(node, StringValueNode):
            return self._over(node.value, type_, coordinate, path)
        return None

    def _in_value(self, value: Any, type_: GraphQLInputType, coordinate: str, path: str) -> GraphQLError | None:
        # A variable as JSON sent it. Anything not of the type's shape is left to coercion to refuse.
        type_ = _nullable(type_)
        if isinstance(type_, GraphQLList):
            items = value if isinstance(value, list) else [value]
            for index, item in enumerate(items):
                found = self._in_value(item, type_.of_type, coordinate, f"{path}[{index}]")
                if found is not None:
                    return found
            return None
        if isinstance(type_, GraphQLInputObjectType):
            if not isinstance(value, dict):
                return None
            for name, item in value.items():
                definition = type_.fields.get(name)
                if definition is not None:
                    found = self._in_value(item, definition.type, f"{type_.name}.{name}", f"{path}.{name}")
                    if found is not None:
                        return found
            return None
        if isinstance(value, str):
            return self._over(value, type_, coordinate, path)
        return None

    def _over(self, text: str, type_: GraphQLInputType, coordinate: str, path: str) -> GraphQLError | None:
        if not self._too_long(text, type_, coordinate):
            return None
        bound = self._limits.get(coordinate) or _DEFAULTS[type_.name]  # type: ignore[union-attr]
        return GraphQLError(
            f"{path}: at most {bound.length} characters", extensions={"code": "BAD_USER_INPUT", "field": path}
        )

    def _too_long(self, text: str, type_: GraphQLInputType, coordinate: str) -> bool:
        if not isinstance(type_, GraphQLScalarType):
            return False
        bound = self._limits.get(coordinate) or _DEFAULTS.get(type_.name)
        return bound is not None and not bound.own_rule and len(text) > bound.length


# Validation allows far fewer levels; a document this deep never runs (refused by validation,
# or by its cost where that is checked first), so the walk need not follow it down.
MAX_DEPTH = 64


def _sites(
    schema: GraphQLSchema, parent: GraphQLNamedType | None, selections: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode], spread: set[str], depth: int = 0,
) -> Iterator[_Site]:
    """The arguments of every field selected under `parent`, through fragments (each spread once).

    `parent` may be an object type, an interface (`node { id }`) or a union; a fragment on a
    type condition is walked as that type. Unknown fields, arguments and types (a document
    not validated yet) are passed over.
    """
    if depth > MAX_DEPTH:
        return
    fields = parent.fields if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) else {}
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            field = fields.get(selection.name.value)
            if field is None:  # __typename and the introspection fields take no inputs of ours
                continue
            for argument in selection.arguments or ():
                definition = field.args.get(argument.name.value)
                if definition is not None:
                    coordinate = f"{parent.name}.{selection.name.value}({argument.name.value}:)"  # type: ignore[union-attr]
                    yield _Site(argument.name.value, coordinate, definition.type, argument.value)
            if selection.selection_set is not None:
                yield from _sites(schema, get_named_type(field.type), selection.selection_set, fragments, spread, depth + 1)
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            target = schema.get_type(condition.name.value) if condition is not None else parent
            yield from _sites(schema, target, selection.selection_set, fragments, spread, depth + 1)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            definition = fragments.get(name)
            if definition is None or name in spread:
                continue
            spread.add(name)
            target = schema.get_type(definition.type_condition.name.value)
            yield from _sites(schema, target, definition.selection_set, fragments, spread, depth + 1)


def _nullable(type_: GraphQLInputType) -> GraphQLInputType:
    return type_.of_type if isinstance(type_, GraphQLNonNull) else type_


def _reads_variables(node: ValueNode) -> bool:
    if isinstance(node, VariableNode):
        return True
    if isinstance(node, ListValueNode):
        return any(_reads_variables(item) for item in node.values)
    if isinstance(node, ObjectValueNode):
        return any(_reads_variables(field.value) for field in node.fields)
    return False
