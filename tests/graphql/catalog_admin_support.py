"""Catalog objects made through the product center's API, each test with codes of its own."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tests.support import GraphQLClient

CREATE_PRODUCT = """
mutation($input: CreateProductInput!) { createProduct(input: $input) { product { id slug version } userErrors { field message code } } }
"""
CREATE_SKU = """
mutation($input: CreateSkuInput!) { createSku(input: $input) {
  sku { id code version basePrice { amount } faceValue { amount } } userErrors { field message code } } }
"""
UPDATE_SKU = """
mutation($input: UpdateSkuInput!) { updateSku(input: $input) {
  sku { code version basePrice { amount } } userErrors { field message code } } }
"""
LIST = """
mutation($channel: String!, $product: ID!, $listed: Boolean!) {
  setProductListing(input: { channel: $channel, productId: $product, listed: $listed }) {
    listing { channel position } userErrors { field code } } }
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Catalog:
    """Creates products and SKUs as an operator would, and reads what came back."""

    gql: GraphQLClient
    admin: str

    async def admin_gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.gql(query, variables, key=self.admin)

    async def product(self, **fields: Any) -> dict[str, Any]:
        payload = {"brand": "tencent", "category": "game-card", "name": "测试商品", "slug": unique("test-product"), **fields}
        answer = await self.admin_gql(CREATE_PRODUCT, {"input": payload})
        created = answer["data"]["createProduct"]
        assert created["userErrors"] == [], created
        return created["product"]

    async def sku(self, product_id: str, **fields: Any) -> dict[str, Any]:
        answer = await self.create_sku(product_id, **fields)
        assert answer["userErrors"] == [], answer
        return answer["sku"]

    async def create_sku(self, product_id: str, **fields: Any) -> dict[str, Any]:
        payload = {"productId": product_id, "code": unique("T").upper(), "name": "测试 SKU", "kind": "CARD_CODE",
                   "basePrice": "10.00", **fields}
        return (await self.admin_gql(CREATE_SKU, {"input": payload}))["data"]["createSku"]

    async def update_sku(self, **fields: Any) -> dict[str, Any]:
        return (await self.admin_gql(UPDATE_SKU, {"input": fields}))["data"]["updateSku"]

    async def channel(self, *, public: bool = True) -> str:
        """A channel of the test's own: what it lists leaves the demo's channels as they are."""
        code = unique("shop")
        answer = await self.admin_gql(
            "mutation($c: String!, $p: Boolean!) { createChannel(input: { code: $c, name: \"测试渠道\", currency: \"CNY\", "
            "public: $p }) { channel { code } userErrors { code } } }", {"c": code, "p": public})
        assert answer["data"]["createChannel"]["userErrors"] == [], answer
        return code

    async def list_on(self, channel: str, product_id: str, listed: bool = True) -> dict[str, Any]:
        answer = await self.admin_gql(LIST, {"channel": channel, "product": product_id, "listed": listed})
        return answer["data"]["setProductListing"]
