"""The two baselines the gateway is measured against, served by uvicorn like the gateway.

Both read the gateway's own answer to the catalog query from the file named by
QUANYI_BENCH_ANSWER, so they serve the same data and the same number of bytes:

- `floor_app`: Starlette returning those bytes from memory, the cost of HTTP alone;
- `strawberry_app`: a plain strawberry schema of the same shape over in-memory
  objects built from that answer, served by strawberry's own ASGI view with no caches.
"""

from __future__ import annotations

import enum
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.asgi import GraphQL


def _answer() -> bytes:
    return Path(os.environ["QUANYI_BENCH_ANSWER"]).read_bytes()


def floor_app() -> Starlette:
    answer = _answer()

    async def catalog(request: Request) -> Response:
        await request.body()  # a real endpoint reads what it was sent
        return Response(answer, media_type="application/json")

    return Starlette(routes=[Route("/graphql", catalog, methods=["POST"])])


@strawberry.enum
class SkuKind(enum.Enum):
    CARD_CODE = "CARD_CODE"
    SERIAL = "SERIAL"
    DIRECT_RECHARGE = "DIRECT_RECHARGE"
    BUNDLE = "BUNDLE"
    BLIND_BOX = "BLIND_BOX"


@strawberry.type
class Money:
    amount: Decimal
    currency: str


@strawberry.type
class Stock:
    available: int
    reserved: int
    presale: int


@strawberry.type
class Brand:
    name: str


@strawberry.type
class Sku:
    id: strawberry.ID
    code: str
    kind: SkuKind
    price: Money
    stock: Stock


@strawberry.type
class Product:
    id: strawberry.ID
    name: str
    slug: str
    brand: Brand
    skus: list[Sku]


@strawberry.type
class ProductEdge:
    node: Product


@strawberry.type
class ProductConnection:
    edges: list[ProductEdge]


def _catalog(answer: bytes) -> list[Product]:
    edges: list[dict[str, Any]] = orjson.loads(answer)["data"]["products"]["edges"]
    return [
        Product(
            id=strawberry.ID(node["id"]),
            name=node["name"],
            slug=node["slug"],
            brand=Brand(name=node["brand"]["name"]),
            skus=[
                Sku(
                    id=strawberry.ID(sku["id"]),
                    code=sku["code"],
                    kind=SkuKind(sku["kind"]),
                    price=Money(
                        amount=Decimal(sku["price"]["amount"]), currency=sku["price"]["currency"]
                    ),
                    stock=Stock(**sku["stock"]),
                )
                for sku in node["skus"]
            ],
        )
        for node in (edge["node"] for edge in edges)
    ]


class _CompactJSON(GraphQL):
    """strawberry's view as shipped, but encoding like the gateway (orjson: UTF-8, compact),
    so its answer is byte-identical and the comparison is about GraphQL, not JSON."""

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def strawberry_app() -> Starlette:
    catalog = _catalog(_answer())

    @strawberry.type
    class Query:
        @strawberry.field
        def products(self, channel: str, first: int | None = 20) -> ProductConnection:
            return ProductConnection(edges=[ProductEdge(node=p) for p in catalog[: first or 20]])

    schema = strawberry.Schema(query=Query)
    return Starlette(routes=[Route("/graphql", _CompactJSON(schema, graphql_ide=None))])
