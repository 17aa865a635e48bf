"""A blind box's pool in catalog records (`importCatalog`, and the file `quanyi import-catalog`
reads): the items and weights it publishes, set as `setBlindBoxPool` sets them, and frozen
once the box sold a unit: a record that changes a frozen pool is refused with its reason,
and nothing of the import is written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from domain.catalog import SkuKind
from models import Brand
from schema.relay import encode_id
from services.catalog.state import CatalogState
from tests.e2e.shop import StockedSku, order_input
from tests.graphql.selling_shop import SellingShop, open_selling_shop

IMPORT = """
mutation($records: [JSON!]!, $dry: Boolean!) { importCatalog(records: $records, dryRun: $dry) {
  applied changes { code action fields } userErrors { field code } } }
"""
BOX = """
query Box($id: ID!) {
  product(channel: "web", id: $id) { skus { code blindBox { round commitment frozen items { code weight } } } }
}
"""
PLACE = """
mutation Place($input: PlaceOrderInput!) { placeOrder(input: $input) { order { status } userErrors { code } } }
"""


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SellingShop]:
    async with open_selling_shop(tmp_path_factory.mktemp("box-pools")) as opened:
        yield opened


def pool_record(box: StockedSku, *items: tuple[StockedSku, Any]) -> dict[str, Any]:
    return {"type": "sku", "code": box.code, "pool": [{"sku": sku.code, "weight": weight} for sku, weight in items]}


async def import_records(shop: SellingShop, records: list[dict[str, Any]], *, dry: bool = False) -> Any:
    answer = await shop.gql(IMPORT, {"records": records, "dry": dry}, key=shop.keys.admin)
    assert "errors" not in answer, answer
    return answer["data"]["importCatalog"]


async def published(shop: SellingShop, box: StockedSku) -> dict[str, Any]:
    answer = await shop.gql(BOX, {"id": encode_id("Product", shop.shelf.product_id)})
    return next(sku["blindBox"] for sku in answer["data"]["product"]["skus"] if sku["code"] == box.code)


async def new_box(shop: SellingShop) -> StockedSku:
    return await shop.shelf._sku(SkuKind.BLIND_BOX, 2900, 0)


async def test_an_import_sets_a_box_pool_and_opens_its_first_round(shop: SellingShop) -> None:
    small, large, box = await shop.shelf.card_codes(3), await shop.shelf.card_codes(2), await new_box(shop)

    answer = await import_records(shop, [pool_record(box, (small, 3), (large, 1))])

    assert answer == {"applied": True, "changes": [{"code": box.code, "action": "UPDATE", "fields": ["pool"]}],
                      "userErrors": []}
    shown = await published(shop, box)
    assert (shown["round"], shown["frozen"], len(shown["commitment"])) == (1, False, 64)
    assert shown["items"] == [{"code": small.code, "weight": 3}, {"code": large.code, "weight": 1}]
    again = await import_records(shop, [pool_record(box, (small, 3), (large, 1))])
    assert again == {"applied": True, "changes": [], "userErrors": []}


async def test_a_sold_box_refuses_a_new_pool_and_the_import_writes_nothing(shop: SellingShop) -> None:
    small, large, box = await shop.shelf.card_codes(3), await shop.shelf.card_codes(2), await new_box(shop)
    assert (await import_records(shop, [pool_record(box, (small, 3), (large, 1))]))["applied"]
    placed = await shop.gql(PLACE, {"input": order_input((box, 1), buyer={"phone": "13800138000"})})
    assert placed["data"]["placeOrder"]["userErrors"] == [], placed
    before = await published(shop, box)

    for changed in (pool_record(box, (small, 1), (large, 1)), pool_record(box, (large, 1), (small, 3)),
                    pool_record(box, (small, 3))):
        answer = await import_records(shop, [{"type": "brand", "code": "pool-frozen-brand", "name": "新品牌"}, changed])
        assert answer == {
            "applied": False,
            "changes": [{"code": "pool-frozen-brand", "action": "CREATE", "fields": ["code", "name"]}],
            "userErrors": [{"field": "records.1.pool", "code": "POOL_FROZEN"}],
        }

    assert await published(shop, box) == {**before, "frozen": True}
    async with shop.db.sessions() as session:
        assert await session.scalar(select(Brand.id).where(Brand.code == "pool-frozen-brand")) is None
    # The same pool again is no change, and no error.
    same = await import_records(shop, [pool_record(box, (small, 3), (large, 1))])
    assert same == {"applied": True, "changes": [], "userErrors": []}


@pytest.mark.parametrize(("pool", "error"), [
    (lambda codes, bundle: [{"sku": codes.code, "weight": 0}], {"field": "records.0.pool.0.weight", "code": "INVALID_INPUT"}),
    (lambda codes, bundle: [{"sku": codes.code, "weight": 1_000_001}], {"field": "records.0.pool.0.weight", "code": "INVALID_INPUT"}),
    (lambda codes, bundle: [{"sku": codes.code, "weight": True}], {"field": "records.0.pool.0.weight", "code": "INVALID_INPUT"}),
    (lambda codes, bundle: [{"sku": codes.code, "weight": "2"}], {"field": "records.0.pool.0.weight", "code": "INVALID_INPUT"}),
    (lambda codes, bundle: [{"sku": codes.code, "weight": 1}, {"sku": f" {codes.code.lower()} ", "weight": 2}],
     {"field": "records.0.pool.1.sku", "code": "DUPLICATE"}),
    (lambda codes, bundle: [{"sku": bundle.code, "weight": 1}], {"field": "records.0.pool.0.sku", "code": "INVALID_FOR_KIND"}),
    (lambda codes, bundle: [{"sku": "NO-SUCH-SKU", "weight": 1}], {"field": "records.0.pool.0.sku", "code": "NOT_FOUND"}),
    (lambda codes, bundle: [{"sku": codes.code, "weight": 1}] * 51, {"field": "records.0.pool", "code": "INVALID_INPUT"}),
    (lambda codes, bundle: {"sku": codes.code}, {"field": "records.0.pool", "code": "INVALID_VALUE"}),
])
async def test_a_pool_out_of_bounds_is_refused_by_field(shop: SellingShop, pool: Any, error: dict[str, str]) -> None:
    codes, box = await shop.shelf.card_codes(1), await new_box(shop)
    bundle = await shop.shelf.bundle((codes, 1))

    answer = await import_records(shop, [{"type": "sku", "code": box.code, "pool": pool(codes, bundle)}])

    assert (answer["applied"], answer["userErrors"]) == (False, [error])
    assert (await published(shop, box))["items"] == []


async def test_only_a_blind_box_has_a_pool(shop: SellingShop) -> None:
    codes, other = await shop.shelf.card_codes(1), await shop.shelf.card_codes(1)

    answer = await import_records(shop, [pool_record(codes, (other, 1))])

    assert (answer["applied"], answer["userErrors"]) == (False, [{"field": "records.0.pool", "code": "INVALID_FOR_KIND"}])


async def test_a_box_that_sells_while_an_import_is_planned_keeps_its_pool(
    shop: SellingShop, monkeypatch: pytest.MonkeyPatch
) -> None:
    small, large, box = await shop.shelf.card_codes(3), await shop.shelf.card_codes(2), await new_box(shop)
    assert (await import_records(shop, [pool_record(box, (small, 3), (large, 1))]))["applied"]
    placed = await shop.gql(PLACE, {"input": order_input((box, 1), buyer={"phone": "13800138000"})})
    assert placed["data"]["placeOrder"]["userErrors"] == [], placed
    before = await published(shop, box)
    # The plan was read before the sale: only the write, under the box's round lock, sees it.
    monkeypatch.setattr(CatalogState, "box_sold", lambda self, code: False)

    answer = await import_records(shop, [{"type": "brand", "code": "pool-raced-brand", "name": "新品牌"},
                                         pool_record(box, (small, 1), (large, 1))])

    assert (answer["applied"], answer["userErrors"]) == (False, [{"field": "records.1.pool", "code": "POOL_FROZEN"}])
    assert await published(shop, box) == before
    async with shop.db.sessions() as session:
        assert await session.scalar(select(Brand.id).where(Brand.code == "pool-raced-brand")) is None
