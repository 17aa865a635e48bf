"""What a discount costs, and whom: each delivered discounted line books the discount to whoever
bears the campaign (the platform's marketing account, the channel's commission, or the
supplier's cost), in the delivery's own transaction, so a refund reverses it exactly; the
statement's lines show gross as the buyer paid it and the discount beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from models import LedgerEntry, LedgerTransaction
from tests.e2e.shop import Shop, open_shop
from tests.settlement_support import Partner, delivered_order, new_partner, refund, supplier_of, unbalanced_transactions

CREATE = """
mutation Create($input: CreateCampaignInput!) { createCampaign(input: $input) { campaign { id } userErrors { field code } } }
"""
FLOOR = "mutation Floor($input: SetPriceControlInput!) { setPriceControl(input: $input) { userErrors { code } } }"
GENERATE = """
mutation Generate($input: GenerateSettlementInput!) {
  generateSettlementStatement(input: $input) {
    statement { totals { gross { amount } discount { amount } refunds { amount } }
                lines { edges { node { externalOrderNumber gross { amount } discount { amount } cost { amount }
                                       commission { amount } margin { amount } refunded { amount } } } } }
    userErrors { code }
  }
}
"""
MARCH = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("coupon-settlement"), expiry_interval_seconds=3600) as opened:
        opened.extra["ten"] = await opened.shelf.counter(100_000, price_fen=1000)  # cost 9.00
        await supplier_of(opened.db, "补贴供应商", opened.extra["ten"])
        yield opened


@pytest.fixture(scope="module")
async def partner(shop: Shop) -> Partner:
    return await new_partner(shop.db, commission_bp=600)


async def campaign(shop: Shop, partner: Partner, **fields: Any) -> None:
    given = {"name": "结算券", "channel": partner.channel, "skuIds": [shop.extra["ten"].gid], **fields}
    answer = await shop.gql(CREATE, {"input": given}, key=shop.keys.admin)
    assert answer["data"]["createCampaign"]["userErrors"] == []


async def postings(shop: Shop, line_id: int) -> dict[str, int]:
    async with shop.db.sessions() as session:
        found = await session.execute(
            select(LedgerEntry.account, LedgerEntry.amount_fen)
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .where(LedgerTransaction.key == f"delivery:{line_id}")
        )
        summed: dict[str, int] = {}
        for account, fen in found:
            summed[account.value] = summed.get(account.value, 0) + fen
        return summed


async def test_each_bearer_pays_the_discount_and_the_statement_shows_it(shop: Shop, partner: Partner) -> None:
    ten = shop.extra["ten"]
    assert (await shop.gql(FLOOR, {"input": {"skuId": ten.gid, "floor": "8.00"}}, key=shop.keys.admin))["data"]["setPriceControl"]["userErrors"] == []
    await campaign(shop, partner, code="PLATFORM1", amountOff="1.00")
    await campaign(shop, partner, code="CHANNEL50", amountOff="0.50", bearer="CHANNEL")
    await campaign(shop, partner, code="SUPPLIER5", price="5.00", subsidised=True, bearer="SUPPLIER")
    at = MARCH + timedelta(days=2)

    platform = await delivered_order(shop.db, partner.channel, (ten, 1), at=at, external="CP-1", coupon="platform1")
    channel = await delivered_order(shop.db, partner.channel, (ten, 1), at=at, external="CP-2", coupon="CHANNEL50")
    supplier = await delivered_order(shop.db, partner.channel, (ten, 1), at=at, external="CP-3", coupon="supplier5")
    refunded = await delivered_order(shop.db, partner.channel, (ten, 1), at=at, external="CP-4", coupon="PLATFORM1")
    await refund(shop.db, refunded, at=at + timedelta(hours=1))
    statement = await shop.gql(GENERATE, {"input": {
        "party": "CHANNEL", "code": partner.channel, "periodStart": MARCH.isoformat(),
        "periodEnd": (MARCH + timedelta(days=31)).isoformat(),
    }}, key=shop.keys.admin)

    # 10.00 list price, 9.00 cost, 6% commission (0.60), margin 0.40; then the discount.
    assert await postings(shop, platform.line_ids[0]) == {"CHANNEL": 900, "SUPPLIER": -900, "COMMISSION": -60, "MARGIN": -40, "MARKETING": 100}
    assert await postings(shop, channel.line_ids[0]) == {"CHANNEL": 950, "SUPPLIER": -900, "COMMISSION": -10, "MARGIN": -40}
    assert await postings(shop, supplier.line_ids[0]) == {"CHANNEL": 500, "SUPPLIER": -400, "COMMISSION": -60, "MARGIN": -40}
    assert await unbalanced_transactions(shop.db) == []
    lines = [edge["node"] for edge in statement["data"]["generateSettlementStatement"]["statement"]["lines"]["edges"]]
    # The totals add the lines up: the refunded order's discount came back with its refund.
    assert statement["data"]["generateSettlementStatement"]["statement"]["totals"] == {
        "gross": {"amount": "32.50"}, "discount": {"amount": "6.50"}, "refunds": {"amount": "9.00"}}

    def line(gross: str, discount: str, cost: str, commission: str, refunded: str = "0.00") -> dict[str, Any]:
        return {"gross": {"amount": gross}, "discount": {"amount": discount}, "cost": {"amount": cost},
                "commission": {"amount": commission}, "margin": {"amount": "0.40"}, "refunded": {"amount": refunded}}

    assert lines == [
        {"externalOrderNumber": "CP-1", **line("9.00", "1.00", "9.00", "0.60")},
        {"externalOrderNumber": "CP-2", **line("9.50", "0.50", "9.00", "0.10")},
        {"externalOrderNumber": "CP-3", **line("5.00", "5.00", "4.00", "0.60")},
        # Refunded in full: what the buyer paid comes back, and the discount with it.
        {"externalOrderNumber": "CP-4", **{**line("9.00", "0.00", "9.00", "0.60"), "refunded": {"amount": "9.00"}}},
    ]
