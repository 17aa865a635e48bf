"""An answer shaped from Python objects as graphql-core's executor would shape it, for the
few object types a compiled mutation returns (transport/compiled_mutation.py).

graphql-core walks a selection field by field: it collects the fields (aliases, fragments,
`@skip`/`@include`), calls each field's resolver, completes the value (non-null checks,
lists, a leaf's serialisation, an object's own fields) and, when a field fails, nulls it
and its parents up to the nearest nullable one. That walk is general, and costs a placed
order more than the rest of its GraphQL answer. `Shape` does the same walk over a
selection known to hold only what it can do the same way:

- fields of object types whose value is an attribute (strawberry's default resolver), or
  one of `RESOLVED` (resolvers that read only `info.context`, with no arguments);
- leaves serialised by their own GraphQL type, as graphql-core serialises them.

`shapeable` says at compile time whether a selection is of that kind; anything else is
left to graphql-core. Errors are graphql-core's: the same messages, paths and locations.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
    is_leaf_type,
    located_error,
)
from graphql.pyutils import Undefined
from graphql.pyutils import inspect as inspect_value

# Resolvers that need nothing of `info` but its context and take no arguments.
RESOLVED = frozenset({("Order", "lines"), ("Order", "events")})
CONDITIONS = frozenset({"skip", "include"})
DEFINITION_BACKREF = "strawberry-definition"  # where strawberry keeps a field's own definition


@dataclass(frozen=True, slots=True)
class _Info:
    """What the resolvers of RESOLVED read of `info`."""

    context: Any


Path = tuple[str | int, ...]


class FieldFailed(Exception):
    """A non-null field came back null or failed: its nearest nullable parent is null."""


def shapeable(
    schema: GraphQLSchema, type_: GraphQLObjectType, selection_set: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode], seen: frozenset[str] = frozenset(),
) -> bool:
    """Whether every field under the selection can be shaped here, whatever the variables."""
    for selection in selection_set.selections:
        if any(directive.name.value not in CONDITIONS for directive in selection.directives or ()):
            return False
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name == "__typename":
                continue
            definition = type_.fields.get(name)
            if definition is None or selection.arguments:
                return False
            if not _plain(type_, name, definition.resolve) and (type_.name, name) not in RESOLVED:
                return False
            named = _named(definition.type)
            if is_leaf_type(named):
                if selection.selection_set is not None:
                    return False
                continue
            if not isinstance(named, GraphQLObjectType) or selection.selection_set is None:
                return False
            if not shapeable(schema, named, selection.selection_set, fragments, seen):
                return False
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            if condition is not None and condition.name.value != type_.name:
                return False  # an abstract or other type: left to graphql-core
            if not shapeable(schema, type_, selection.selection_set, fragments, seen):
                return False
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or fragment.type_condition.name.value != type_.name:
                return False
            if name not in seen and not shapeable(schema, type_, fragment.selection_set, fragments, seen | {name}):
                return False
        else:
            return False
    return True


def _plain(type_: GraphQLObjectType, name: str, resolve: Any) -> bool:
    """A field strawberry answers with the attribute of its python name."""
    return resolve is not None and getattr(resolve, "_is_default", False)


def _named(type_: GraphQLOutputType) -> Any:
    while isinstance(type_, (GraphQLNonNull, GraphQLList)):
        type_ = type_.of_type
    return type_


class Shape:
    """One answer's walk: the variables that decide `@skip`/`@include`, the errors met."""

    def __init__(
        self, fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any], context: Any,
    ) -> None:
        self._fragments = fragments
        self._variables = variables
        self._info = _Info(context)
        self.errors: list[GraphQLError] = []

    def collect(self, type_: GraphQLObjectType, selection_sets: Iterable[SelectionSetNode]) -> dict[str, list[FieldNode]]:
        """The fields by response key, in the order graphql-core collects them."""
        fields: dict[str, list[FieldNode]] = {}
        for selection_set in selection_sets:
            self._collect(type_, selection_set, fields, set())
        return fields

    def _collect(self, type_: GraphQLObjectType, selection_set: SelectionSetNode,
                 fields: dict[str, list[FieldNode]], visited: set[str]) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                fields.setdefault(key, []).append(selection)
            elif isinstance(selection, InlineFragmentNode):
                self._collect(type_, selection.selection_set, fields, visited)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                self._collect(type_, self._fragments[name].selection_set, fields, visited)

    def _included(self, selection: Any) -> bool:
        for directive in selection.directives or ():
            value = directive.arguments[0].value if directive.arguments else None
            if isinstance(value, VariableNode):
                condition = self._variables.get(value.name.value)
            elif isinstance(value, BooleanValueNode):
                condition = value.value
            else:
                condition = None
            if directive.name.value == "skip" and condition is True:
                return False
            if directive.name.value == "include" and condition is not True:
                return False
        return True

    async def object(self, type_: GraphQLObjectType, source: Any, nodes: list[FieldNode], path: Path) -> dict[str, Any]:
        """The object's selected fields; raises FieldFailed when a non-null one fails."""
        answer: dict[str, Any] = {}
        for key, field_nodes in self.collect(type_, [n.selection_set for n in nodes if n.selection_set]).items():
            answer[key] = await self.field(type_, source, key, field_nodes, (*path, key))
        return answer

    async def field(self, parent: GraphQLObjectType, source: Any, key: str, nodes: list[FieldNode], path: Path) -> Any:
        name = nodes[0].name.value
        if name == "__typename":
            return parent.name
        definition = parent.fields[name]
        try:
            if (parent.name, name) in RESOLVED:
                strawberry_field = definition.extensions[DEFINITION_BACKREF]
                value = strawberry_field.base_resolver.wrapped_func(source, self._info)
                if inspect.isawaitable(value):
                    value = await value
            else:
                value = definition.resolve(source, None)
            return await self.complete(definition.type, nodes, path, value, parent, name)
        except FieldFailed:
            if isinstance(definition.type, GraphQLNonNull):
                raise
            return None
        except Exception as error:  # a resolver's or a serialiser's: as graphql-core locates it
            self.errors.append(located_error(error, nodes, list(path)))
            if isinstance(definition.type, GraphQLNonNull):
                raise FieldFailed from None
            return None

    async def complete(self, type_: GraphQLOutputType, nodes: list[FieldNode], path: Path, value: Any,
                       parent: GraphQLObjectType, name: str) -> Any:
        if isinstance(value, Exception):
            raise value
        if isinstance(type_, GraphQLNonNull):
            completed = await self.complete(type_.of_type, nodes, path, value, parent, name)
            if completed is None:
                raise TypeError(f"Cannot return null for non-nullable field {parent.name}.{name}.")
            return completed
        if value is None:
            return None
        if isinstance(type_, GraphQLList):
            return await self._list(type_, nodes, path, value, parent, name)
        if is_leaf_type(type_):
            coerced = type_.coerce_output_value(value)  # type: ignore[union-attr]
            if coerced is Undefined or coerced is None:
                raise TypeError(
                    f"Expected `{inspect_value(type_)}.coerce_output_value({inspect_value(value)})` to return"
                    f" non-nullable value, returned: {inspect_value(coerced)}"
                )
            return coerced
        return await self.object(type_, value, nodes, path)  # type: ignore[arg-type]

    async def _list(self, type_: GraphQLList[Any], nodes: list[FieldNode], path: Path, value: Any,
                    parent: GraphQLObjectType, name: str) -> list[Any]:
        items = []
        item_type = type_.of_type
        for index, item in enumerate(value):
            item_path = (*path, index)
            try:
                items.append(await self.complete(item_type, nodes, item_path, item, parent, name))
            except FieldFailed:
                if isinstance(item_type, GraphQLNonNull):
                    raise
                items.append(None)
            except Exception as error:
                self.errors.append(located_error(error, nodes, list(item_path)))
                if isinstance(item_type, GraphQLNonNull):
                    raise FieldFailed from None
                items.append(None)
        return items
