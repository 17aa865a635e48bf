"""A second subgraph for the federation test: reviews of Quanyi's products, by their IDs.

    QUANYI_REVIEWED="id1,id2" uvicorn tests.federation.reviews:app
"""

from __future__ import annotations

import os

import strawberry
import strawberry.federation
from strawberry.asgi import GraphQL

REVIEWED = [pid for pid in os.environ.get("QUANYI_REVIEWED", "").split(",") if pid]


@strawberry.federation.type(keys=["id"])
class Product:
    id: strawberry.ID

    @strawberry.field
    def reviews(self) -> list[Review]:
        return [Review(stars=5 - i, body=f"review {i} of {self.id}", product=self) for i in range(2) if self.id in REVIEWED]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Product:
        return cls(id=id)


@strawberry.type
class Review:
    stars: int
    body: str
    product: Product


@strawberry.type
class Query:
    @strawberry.field
    def top_reviews(self) -> list[Review]:
        return [Review(stars=5, body="top", product=Product(id=strawberry.ID(pid))) for pid in REVIEWED]


app = GraphQL(strawberry.federation.Schema(query=Query, types=[Product]))
