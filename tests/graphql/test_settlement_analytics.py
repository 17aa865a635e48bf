"""Margins in analytics and on the dashboard, and what we hold at each supplier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.shop import Shop, open_shop
from tests.services import catalog_rows as rows
from tests.settlement_support import delivered_order, new_partner, refund, supplier_of

PERFORMANCE = """
query P($from: DateTime!, $to: DateTime!, $channel: String) {
  channelPerformance(from: $from, to: $to, channel: $channel) { channel margin { amount currency } }
}
"""
SUPPLIERS = """
query S($from: DateTime!, $to: DateTime!) {
  supplierPerformance(from: $from, to: $to) { supplier lines gross { amount } cost { amount } margin { amount } refundedCost { amount } }
}
"""
DEPOSIT = """
mutation D($supplier: String!, $amount: Decimal!, $reference: String!) {
  recordSupplierDeposit(supplier: $supplier, amount: $amount, reference: $reference) { balance { amount currency } userErrors { field message code } }
}
"""
BALANCE = "query B($supplier: String!) { supplierBalance(supplier: $supplier) { amount } }"

AUGUST = datetime(2025, 8, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("settlement-analytics"), expiry_interval_seconds=3600) as opened:
        opened.extra["ten"] = await opened.shelf.counter(100_000, price_fen=1000)
        opened.extra["supplier"] = await supplier_of(opened.db, "毛利供应商", opened.extra["ten"])
        yield opened


def window(days: int = 1) -> dict[str, str]:
    return {"from": AUGUST.isoformat(), "to": (AUGUST + timedelta(days=days)).isoformat()}


async def test_channel_performance_shows_the_margin_posted_in_the_period(shop: Shop) -> None:
    partner = await new_partner(shop.db, commission_bp=300)
    await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 4), at=AUGUST + timedelta(hours=1))  # margin 4.00 − 1.20 = 2.80
    returned = await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 1), at=AUGUST + timedelta(hours=2))
    await refund(shop.db, returned, at=AUGUST + timedelta(hours=3))
    await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 1), at=AUGUST + timedelta(days=2))  # later

    operator = await shop.gql(PERFORMANCE, {**window(), "channel": partner.channel}, key=shop.keys.admin)
    own = await shop.gql(PERFORMANCE, {**window(), "channel": partner.channel}, key=partner.key)

    assert operator == {"data": {"channelPerformance": [{"channel": partner.channel, "margin": {"amount": "2.80", "currency": "CNY"}}]}}
    assert own == {"data": {"channelPerformance": [{"channel": partner.channel, "margin": None}]}}  # operators only


async def test_supplier_performance_and_balance_come_from_the_ledger(shop: Shop) -> None:
    partner = await new_partner(shop.db, commission_bp=0)
    async with shop.db.sessions() as session, session.begin():
        row = await rows.supplier(session, "预存供应商")  # fulfils this test's lines only
    supplier = row.code
    deposit = await shop.gql(DEPOSIT, {"supplier": supplier, "amount": "500.00", "reference": "wire-7"}, key=shop.keys.admin)
    again = await shop.gql(DEPOSIT, {"supplier": supplier, "amount": "500.00", "reference": "wire-7"}, key=shop.keys.admin)
    start = AUGUST + timedelta(days=10)
    await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 3), at=start, supplier_id=row.id)
    returned = await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 1), at=start, supplier_id=row.id)
    await refund(shop.db, returned, at=start + timedelta(hours=1))

    figures = await shop.gql(SUPPLIERS, {"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()}, key=shop.keys.admin)
    balance = await shop.gql(BALANCE, {"supplier": supplier}, key=shop.keys.admin)

    assert deposit == again == {"data": {"recordSupplierDeposit": {"balance": {"amount": "500.00", "currency": "CNY"}, "userErrors": []}}}
    assert figures == {"data": {"supplierPerformance": [{
        "supplier": supplier, "lines": 2, "gross": {"amount": "40.00"}, "cost": {"amount": "36.00"},
        "margin": {"amount": "3.00"}, "refundedCost": {"amount": "9.00"},
    }]}}
    assert balance == {"data": {"supplierBalance": {"amount": "473.00"}}}  # 500.00 − 27.00 kept


@pytest.mark.parametrize(
    ("amount", "reference", "error"),
    [
        ("0", "wire", {"field": "amount", "message": "a deposit is more than zero and at most 10,000,000,000.00", "code": "INVALID_AMOUNT"}),
        ("1.00", " ", {"field": "reference", "message": "a reference is 1 to 128 characters", "code": "INVALID_INPUT"}),
    ],
)
async def test_a_deposit_that_cannot_be_recorded_is_a_user_error(shop: Shop, amount: str, reference: str, error: dict[str, str]) -> None:
    answer = await shop.gql(DEPOSIT, {"supplier": shop.extra["supplier"], "amount": amount, "reference": reference}, key=shop.keys.admin)

    assert answer == {"data": {"recordSupplierDeposit": {"balance": None, "userErrors": [error]}}}


async def test_supplier_figures_are_for_operators(shop: Shop) -> None:
    partner = await new_partner(shop.db)
    for query, variables in ((SUPPLIERS, window()), (BALANCE, {"supplier": shop.extra["supplier"]}),
                             (DEPOSIT, {"supplier": shop.extra["supplier"], "amount": "1.00", "reference": "x"})):
        answer = await shop.gql(query, variables, key=partner.key)
        assert (answer["data"], [e["extensions"]["code"] for e in answer["errors"]]) == (None, ["FORBIDDEN"])


async def test_the_dashboard_shows_the_margin_of_the_last_hour(shop: Shop) -> None:
    from services.analytics.dashboard import snapshot

    partner = await new_partner(shop.db, commission_bp=0)
    now = datetime.now(UTC)
    async with shop.db.sessions() as session:
        before = (await snapshot(session, now)).figures.margin_last_hour
    await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 2), at=now - timedelta(minutes=5))
    async with shop.db.sessions() as session:
        after = (await snapshot(session, now)).figures.margin_last_hour

    # 20.00 paid, 18.00 cost, no commission: 2.00 margin.
    assert (after - before).minor == 200
