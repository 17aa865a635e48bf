"""Helpers for catalog tests: demo IDs by their codes, and answers reduced to what a client acts on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schema.relay import encode_id
from services.demo.seed import MYSTERY_PRODUCT, PRODUCTS

# The demo products in catalog order (the order they were created in).
DEMO_SLUGS = [*(slug for slug, *_ in PRODUCTS), MYSTERY_PRODUCT[0]]  # the blind box's product comes last


@dataclass(frozen=True)
class DemoCatalog:
    """Primary keys of the demo rows by slug or code; global IDs made from them."""

    products: dict[str, int]
    skus: dict[str, int]
    brands: dict[str, int]
    categories: dict[str, int]
    channels: dict[str, int]
    suppliers: dict[str, int]

    def product_id(self, slug: str) -> str:
        return encode_id("Product", self.products[slug])

    def sku_id(self, code: str) -> str:
        return encode_id("Sku", self.skus[code])


def outcome(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer with each error reduced to where it happened and its code.

    Messages are for people and may be reworded; clients act on `extensions.code`.
    """
    reduced: dict[str, Any] = {"data": answer.get("data")}
    if "errors" in answer:
        reduced["errors"] = [
            {
                "path": error.get("path"),
                "code": error["extensions"]["code"],
                "field": error["extensions"].get("field"),
            }
            for error in answer["errors"]
        ]
    return reduced


def slugs(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["slug"] for edge in connection["edges"]]
