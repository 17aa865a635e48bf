"""What a GraphQL operation costs, before it runs and after.

The rules are Shopify's, so partners' tooling reads the figures the way it reads theirs:
- a leaf field (scalar, enum) costs 0, an object 1, a connection 2; a value its parent
  carries (`VALUE_TYPES`: money, stock figures, page info) costs what a leaf costs;
- a list multiplies what one element costs by how many elements it may hold: a connection's
  `edges` by its `first` argument (the page size when absent), any other list by the size
  declared for it here (`LIST_SIZES`, else `DEFAULT_LIST_SIZE`);
- a mutation's root field costs 10, because it writes;
- where a resolver is expensive, `WEIGHTS` adds to the field's own cost.

The requested cost is the upper bound computed from the document before any resolver runs;
the actual cost walks the answer with the same rules, counting the elements that came back.
A fragment's fields count wherever the fragment may apply: the requested cost is an upper
bound, and the answer holds only what applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    is_composite_type,
)

OBJECT_COST = 1
CONNECTION_COST = 2
MUTATION_COST = 10
DEFAULT_LIST_SIZE = 10
# Introspection is answered from memory, but a full schema walk is large: a flat price.
INTROSPECTION_COST = {"__schema": 50, "__type": 5}

# Lists whose length is bounded by the domain, or typically far below the default.
LIST_SIZES: Mapping[str, int] = {
    "Query.channels": 20,
    "Query.apiKeys": 20,
    "Query.riskRules": 50,
    "Query.salesSummary": 50,
    "Product.skus": 5,
    "Sku.components": 3,
    "Sku.suppliers": 5,
    "Sku.priceTiers": 5,
    "Order.lines": 10,
    "Order.events": 10,
    "Order.refunds": 5,
    "OrderLine.codes": 10,
    "OrderLine.deliveries": 5,
    "OrderLine.reveals": 5,
    "RiskVerdict.reasons": 5,
    "Query.riskModels": 20,
    "Query.buyerSegments": 6,
    "BuyerProfile.spent": 2,
    "BuyerProfile.channels": 6,
    "BuyerProfile.categories": 6,
    "Query.drawRounds": 5,
    "BlindBox.items": 10,
    "DrawRound.draws": 100,  # its `first`, at most MAX_DRAWS_PAGE
    "OrderLine.drawn": 3,
}

# Connections whose page, when `first` is not given, is not the usual default.
PAGE_DEFAULTS: Mapping[str, int] = {"SettlementStatement.lines": 100}

# Values carried by their parent, read with it: they cost no more than a scalar would.
VALUE_TYPES = frozenset({
    "Money", "Stock", "PageInfo", "UserError", "RiskReason", "SettlementTotals", "OrderBuyer", "RiskModelScore",
    "DrawAttempt", "DrawWeight", "BlindBoxItem",
    "CountBy", "BuyerSegmentCount",
})

# Fields whose resolver does much more work than reading rows: aggregates over periods.
WEIGHTS: Mapping[str, int] = {
    "Query.salesSummary": 20,
    "Query.topProducts": 20,
    "Query.channelPerformance": 20,
    "Query.supplierPerformance": 20,
    "Query.reconciliationReport": 10,
    "Query.supplierBalance": 5,
    "Subscription.dashboard": 20,
}


@dataclass(frozen=True, slots=True)
class _Field:
    """What the cost rules need of one field of the schema."""

    named: GraphQLOutputType
    is_list: bool
    is_connection: bool
    weight: int
    list_size: int
    page_default: int | None  # a connection's page size when `first` is not given
    sized_by_first: bool  # a plain list whose length the caller gives with `first`


class QueryCost:
    """Requested and actual costs of operations over one schema."""

    def __init__(self, schema: GraphQLSchema, *, default_page_size: int, max_page_size: int) -> None:
        self._schema = schema
        self._default_page_size = default_page_size
        # A larger `first` is refused by the field itself (BAD_USER_INPUT, naming the
        # argument), which says more than a cost refusal would: the cost counts at most this.
        self.max_page_size = max_page_size
        self._fields: dict[tuple[str, str], _Field | None] = {}

    def requested(self, document: DocumentNode, operation: OperationDefinitionNode, variables: Mapping[str, Any] | None) -> int:
        walk = _Walk(self, document, variables or {})
        root = self._root(operation)
        mutation = operation.operation is OperationType.MUTATION
        return walk.requested(root, operation.selection_set, root_cost=MUTATION_COST if mutation else None)

    def actual(self, document: DocumentNode, operation: OperationDefinitionNode, data: Any) -> int:
        if not isinstance(data, dict):
            return 0
        walk = _Walk(self, document, {})
        root = self._root(operation)
        mutation = operation.operation is OperationType.MUTATION
        return walk.actual(root, operation.selection_set, data, root_cost=MUTATION_COST if mutation else None)

    def compiled_actual(self, document: DocumentNode, operation: OperationDefinitionNode) -> ActualCost | None:
        """`actual` for answers of this operation, worked out once: None where its selection
        reaches an interface, a union or introspection (those are walked each time)."""
        walk = _Walk(self, document, {})
        root = self._root(operation)
        mutation = operation.operation is OperationType.MUTATION
        tree = walk.tree(root, (operation.selection_set,), root_cost=MUTATION_COST if mutation else None, depth=0)
        return ActualCost(tree) if tree is not None else None

    def _root(self, operation: OperationDefinitionNode) -> GraphQLObjectType:
        root = self._schema.get_root_type(operation.operation)
        assert root is not None, "validated documents name an existing root type"
        return root

    def field(self, parent: Any, name: str) -> _Field | None:
        """The cost facts of `parent.name`, or None for a field the type does not have
        (a fragment on another member of an interface or union)."""
        key = (parent.name, name)
        if key not in self._fields:
            self._fields[key] = self._describe(parent, name)
        return self._fields[key]

    def _describe(self, parent: Any, name: str) -> _Field | None:
        definition: GraphQLField | None = getattr(parent, "fields", {}).get(name)
        if definition is None:
            return None
        output, is_list = definition.type, False
        while isinstance(output, (GraphQLNonNull, GraphQLList)):
            is_list = is_list or isinstance(output, GraphQLList)
            output = output.of_type
        qualified = f"{parent.name}.{name}"
        is_connection = "first" in definition.args and output.name.endswith("Connection")
        return _Field(
            named=output, is_list=is_list, is_connection=is_connection,
            weight=WEIGHTS.get(qualified, 0), list_size=LIST_SIZES.get(qualified, DEFAULT_LIST_SIZE),
            page_default=PAGE_DEFAULTS.get(qualified, self._default_page_size) if is_connection else None,
            sized_by_first=is_list and "first" in definition.args,
        )


def pages_by_variable(document: DocumentNode) -> bool:
    """Whether any field of the document takes its `first` from a variable: the only way
    variables change what a document is costed."""
    pending: list[Any] = [d.selection_set for d in document.definitions if getattr(d, "selection_set", None)]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode) and any(
                argument.name.value == "first" and not isinstance(argument.value, IntValueNode)
                for argument in selection.arguments or ()
            ):
                return True
            inner = getattr(selection, "selection_set", None)  # a fragment spread has none: its definition is walked
            if inner is not None:
                pending.append(inner)
    return False


# Deeper than any document the depth limit lets run: a document is costed before it is
# validated, so the walk stops here rather than recurse as deep as an attacker nests.
MAX_WALK_DEPTH = 64

Selections = tuple[SelectionSetNode, ...]


class _Walk:
    """One walk over one document. Selections are grouped by response key, as execution
    merges them: fields under one key cost once, over the union of their sub-selections;
    a fragment is expanded once per selection, however often it is spread there."""

    def __init__(self, cost: QueryCost, document: DocumentNode, variables: Mapping[str, Any]) -> None:
        self._cost = cost
        self._variables = variables
        self._fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self._memo: dict[tuple[tuple[int, ...], str, int | None], int] = {}
        self._steps: dict[tuple[tuple[int, ...], str, int | None], list[_Step]] = {}

    def _grouped(self, selection_sets: Selections) -> dict[str, list[FieldNode]]:
        """The field nodes of these selections by response key, fragments flattened."""
        grouped: dict[str, list[FieldNode]] = {}
        expanded: set[str] = set()
        pending = [s for s in selection_sets if s is not None]
        while pending:
            for selection in pending.pop().selections:
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    grouped.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    pending.append(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = self._fragments.get(name)
                    if fragment is not None and name not in expanded:
                        expanded.add(name)
                        pending.append(fragment.selection_set)
        return grouped

    def _members(self, named: Any) -> list[Any]:
        """The object types whose fields a selection on `named` may use."""
        if isinstance(named, GraphQLObjectType):
            return [named]
        return list(self._cost._schema.get_possible_types(named)) or [named]

    def _own_cost(self, facts: _Field, name: str) -> int:
        """What one element of the field costs by itself: 0 for a leaf, 1 for an object,
        2 for a connection, nothing for the edges and page info inside a connection."""
        if not is_composite_type(facts.named) or facts.named.name.endswith("Edge") or facts.named.name in VALUE_TYPES:
            return 0
        return CONNECTION_COST if facts.is_connection else OBJECT_COST

    @staticmethod
    def _children(nodes: list[FieldNode]) -> Selections:
        return tuple(node.selection_set for node in nodes if node.selection_set is not None)

    # -- requested: the upper bound from the document ---------------------------------------

    def requested(self, parent: Any, selection_set: SelectionSetNode | None, *, root_cost: int | None = None) -> int:
        return self._requested(parent, (selection_set,) if selection_set else (), root_cost=root_cost, edges=None, depth=0)

    def _requested(self, parent: Any, selections: Selections, *, root_cost: int | None, edges: int | None, depth: int) -> int:
        if depth > MAX_WALK_DEPTH or not selections:
            return 0
        memo = (tuple(id(s) for s in selections), parent.name, edges)
        if root_cost is None and memo in self._memo:
            return self._memo[memo]
        total = 0
        for nodes in self._grouped(selections).values():
            name = nodes[0].name.value
            facts = self._cost.field(parent, name) if name != "__typename" else None
            if facts is None:
                continue
            if name in INTROSPECTION_COST:
                total += INTROSPECTION_COST[name]
                continue
            # A field's weight is paid once, however many elements it returns.
            total += facts.weight
            own = root_cost if root_cost is not None else self._own_cost(facts, name)
            if not is_composite_type(facts.named):
                total += own
                continue
            # Under one key, the largest `first` any of the merged fields asks for.
            page = max(self._first(n, facts.page_default) for n in nodes) if facts.page_default is not None else None
            children = max(
                self._requested(member, self._children(nodes), root_cost=None, edges=page, depth=depth + 1)
                for member in self._members(facts.named)
            )
            if facts.is_list:
                if name == "edges" and edges is not None:
                    size = edges
                elif facts.sized_by_first:
                    size = max(self._first(n, facts.list_size) for n in nodes)
                else:
                    size = facts.list_size
                total += size * (own + children)
            else:
                total += own + children
        if root_cost is None:
            self._memo[memo] = total
        return total

    def _first(self, node: FieldNode, default: int) -> int:
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return self._page(int(value.value))
            if isinstance(value, VariableNode):
                given = self._variables.get(value.name.value)
                if isinstance(given, int) and not isinstance(given, bool):
                    return self._page(given)
        return default

    def _page(self, first: int) -> int:
        return min(max(0, first), self._cost.max_page_size)

    def tree(self, parent: Any, selections: Selections, *, root_cost: int | None, depth: int) -> _Tree | None:
        """The actual walk's rules for these selections, by response key (see ActualCost)."""
        if depth > MAX_WALK_DEPTH:
            return None
        tree: _Tree = {}
        for key, nodes in self._grouped(selections).items():
            name = nodes[0].name.value
            if name == "__typename":
                continue
            if name in INTROSPECTION_COST:
                return None
            facts = self._cost.field(parent, name)
            if facts is None:
                continue
            own = root_cost if root_cost is not None else self._own_cost(facts, name)
            if not is_composite_type(facts.named):
                tree[key] = (facts.weight, own, None)
                continue
            if not isinstance(facts.named, GraphQLObjectType):
                return None
            child = self.tree(facts.named, self._children(nodes), root_cost=None, depth=depth + 1)
            if child is None:
                return None
            tree[key] = (facts.weight, own, child)
        return tree

    # -- actual: the same rules over the answer -----------------------------------------------

    def actual(self, parent: Any, selection_set: SelectionSetNode | None, data: dict[str, Any], *, root_cost: int | None = None) -> int:
        return self._actual(parent, (selection_set,) if selection_set else (), data, root_cost=root_cost)

    def _actual(self, parent: Any, selections: Selections, data: dict[str, Any], *, root_cost: int | None) -> int:
        total = 0
        for key, facts, own, children, members in self._actual_steps(parent, selections, root_cost):
            if key not in data:
                continue
            if facts is None:  # introspection, at its flat price
                total += own
                continue
            total += facts.weight
            value = data[key]
            if members is None or value is None:
                total += own
                continue
            elements = value if isinstance(value, list) else [value]
            if len(members) == 1:  # an object type: the common case, without max() over one
                member = members[0]
                for element in elements:
                    if isinstance(element, dict):
                        total += own + self._actual(member, children, element, root_cost=None)
                continue
            for element in elements:
                if isinstance(element, dict):
                    total += own + max(self._actual(member, children, element, root_cost=None) for member in members)
        return total

    def _actual_steps(self, parent: Any, selections: Selections, root_cost: int | None) -> list[_Step]:
        """What `_actual` does for each response key of these selections on `parent`, worked
        out once per walk: a list of a hundred elements has the same selections a hundred times."""
        memo = (tuple(id(s) for s in selections), parent.name, root_cost)
        steps = self._steps.get(memo)
        if steps is None:
            steps = []
            for key, nodes in self._grouped(selections).items():
                name = nodes[0].name.value
                if name == "__typename":
                    continue
                facts = self._cost.field(parent, name)
                if facts is None:
                    continue
                if name in INTROSPECTION_COST:
                    steps.append((key, None, INTROSPECTION_COST[name], (), None))
                    continue
                own = root_cost if root_cost is not None else self._own_cost(facts, name)
                members = self._members(facts.named) if is_composite_type(facts.named) else None
                steps.append((key, facts, own, self._children(nodes), members))
            self._steps[memo] = steps
        return steps


# One response key's work in `_Walk._actual`: its key, its cost facts (None: introspection),
# what one element costs by itself, its sub-selections, and the types they may apply to
# (None for a leaf).
_Step = tuple[str, _Field | None, int, Selections, list[Any] | None]

# Response key: (the field's weight, what one element costs by itself, the tree of its
# object's fields, or None for a leaf).
_Tree = dict[str, tuple[int, int, "_Tree | None"]]


class ActualCost:
    """`QueryCost.actual` of one operation's answers, its selection walked once beforehand:
    the same rules (a key absent from the answer costs nothing), for object types only."""

    def __init__(self, tree: _Tree) -> None:
        self._tree = tree

    def of(self, data: Any) -> int:
        return _cost_of(self._tree, data) if isinstance(data, dict) else 0


def _cost_of(tree: _Tree, data: dict[str, Any]) -> int:
    total = 0
    for key, (weight, own, child) in tree.items():
        if key not in data:
            continue
        total += weight
        value = data[key]
        if child is None or value is None:
            total += own
            continue
        for element in value if isinstance(value, list) else (value,):
            if isinstance(element, dict):
                total += own + _cost_of(child, element)
    return total
