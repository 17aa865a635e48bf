"""The schema as an Apollo Federation v2 subgraph (QUANYI_FEDERATION=1).

`Product`, `Sku` and `Order` are entities keyed by their global `id`. A gateway asks for them
through `_entities`, and each is resolved exactly as `node(id:)` resolves it, so a supergraph
sees what the caller's key may see here and no more: an order of another channel, an archived
product for a buyer, a withdrawn SKU come back null. The keys are attached only when the
subgraph is built; the plain schema stays as it is.
"""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.federation.schema_directives import Key

from resolvers.catalog import CatalogQuery
from schema.catalog import Product, Sku
from schema.context import Info
from schema.orders import Order

ENTITIES = (Product, Sku, Order)


def _resolver(type_name: str) -> Any:
    async def resolve_reference(info: Info, id: strawberry.ID) -> Any:
        found = await CatalogQuery.node(CatalogQuery(), info, id)
        # A representation naming one type and the ID of another resolves to nothing.
        return found if found is not None and type(found).__name__ == type_name else None

    return staticmethod(resolve_reference)


def declare_entities() -> None:
    """Key each entity by `id` and resolve references through `node`; once per process."""
    for entity in ENTITIES:
        definition = entity.__strawberry_definition__  # type: ignore[attr-defined]
        if not any(isinstance(directive, Key) for directive in definition.directives):
            definition.directives = [*definition.directives, Key(fields="id", resolvable=True)]
        entity.resolve_reference = _resolver(definition.name)  # type: ignore[attr-defined]
