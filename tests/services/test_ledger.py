"""The ledger as fulfilment will drive it: deliveries, refunds and prepaid balances, on either backend."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from domain.ledger import Account, commission_rate
from domain.money import Money
from domain.settlement import Party
from models import Channel, ChannelKind, LedgerEntry, Sku
from services.fulfilment import hooks
from services.settlement import ledger, prepaid, statements
from tests.e2e.shop import Shop, StockedSku, open_shop
from tests.services import catalog_rows as rows
from tests.settlement_support import (
    _uow,
    delivered_order,
    new_partner,
    paid_order,
    prepaid_books,
    refund,
    unbalanced_transactions,
)

MARCH = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("ledger"), expiry_interval_seconds=3600) as opened:
        # Price 10.00, cost 9.00; a second SKU 25.00, cost 22.50.
        opened.extra["ten"] = await opened.shelf.counter(100_000, price_fen=1000)
        opened.extra["quarter"] = await opened.shelf.counter(100_000, price_fen=2500)
        async with opened.db.sessions() as session, session.begin():
            first = await rows.supplier(session, "首选供应商")
            second = await rows.supplier(session, "备选供应商")
            for sku in (opened.extra["ten"], opened.extra["quarter"]):
                row = await session.get_one(Sku, sku.pk)
                rows.supplies(session, row, second, 2)
                rows.supplies(session, row, first, 1)
        opened.extra["suppliers"] = (first.id, second.id)
        yield opened


async def entries(shop: Shop, line_id: int) -> list[tuple[str, str, int, int | None]]:
    async with shop.db.sessions() as session:
        found = await session.execute(
            select(LedgerEntry.kind, LedgerEntry.account, LedgerEntry.amount_fen, LedgerEntry.supplier_id)
            .where(LedgerEntry.line_id == line_id).order_by(LedgerEntry.id)
        )
        return [(kind.value, account.value, amount, supplier) for kind, account, amount, supplier in found]


async def test_a_delivered_line_posts_payment_cost_commission_and_margin(shop: Shop) -> None:
    partner = await new_partner(shop.db, commission_bp=550)
    first, _ = shop.extra["suppliers"]

    order = await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 3), at=MARCH)

    # 30.00 paid, 27.00 cost, 5.5% commission = 1.65, margin 1.35; supplier: first by priority.
    assert await entries(shop, order.line_ids[0]) == [
        ("DELIVERY", "CHANNEL", 3000, first), ("DELIVERY", "SUPPLIER", -2700, first),
        ("DELIVERY", "COMMISSION", -165, first), ("DELIVERY", "MARGIN", -135, first),
    ]


async def test_delivery_posts_once_however_often_it_is_called(shop: Shop) -> None:
    partner = await new_partner(shop.db)
    _, second = shop.extra["suppliers"]
    order = await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 1), at=MARCH, supplier_id=second)

    async with _uow(shop.db) as uow:
        await ledger.post_delivery(uow.session, order.line_ids[0], supplier_id=None, at=MARCH + timedelta(days=1))

    assert [(kind, account, amount) for kind, account, amount, _ in await entries(shop, order.line_ids[0])] == [
        ("DELIVERY", "CHANNEL", 1000), ("DELIVERY", "SUPPLIER", -900), ("DELIVERY", "COMMISSION", -50), ("DELIVERY", "MARGIN", -50),
    ]
    assert {supplier for *_, supplier in await entries(shop, order.line_ids[0])} == {second}


async def test_a_refund_reverses_the_delivery_exactly_once(shop: Shop) -> None:
    partner = await new_partner(shop.db, commission_bp=333)
    order = await delivered_order(shop.db, partner.channel, (shop.extra["quarter"], 2), at=MARCH)
    later = MARCH + timedelta(days=2)

    await refund(shop.db, order, at=later)
    async with _uow(shop.db) as uow:
        await hooks.line_refunded(uow.session, order.line_ids[0], later)

    posted = await entries(shop, order.line_ids[0])
    assert [(k, a, m) for k, a, m, _ in posted] == [
        ("DELIVERY", "CHANNEL", 5000), ("DELIVERY", "SUPPLIER", -4500), ("DELIVERY", "COMMISSION", -167), ("DELIVERY", "MARGIN", -333),
        ("REFUND", "CHANNEL", -5000), ("REFUND", "SUPPLIER", 4500), ("REFUND", "COMMISSION", 167), ("REFUND", "MARGIN", 333),
    ]
    assert await unbalanced_transactions(shop.db) == []


async def test_a_refund_of_a_line_never_delivered_posts_nothing(shop: Shop) -> None:
    partner = await new_partner(shop.db)
    order = await paid_order(shop.db, partner.channel, (shop.extra["ten"], 1), at=MARCH)

    async with _uow(shop.db) as uow:
        await hooks.line_refunded(uow.session, order.line_ids[0], MARCH)

    assert await entries(shop, order.line_ids[0]) == []


async def test_a_prepaid_balance_is_the_sum_of_its_entries_after_top_ups_payments_and_refunds(shop: Shop) -> None:
    partner = await new_partner(shop.db, kind=ChannelKind.B2B, commission_bp=0)
    async with _uow(shop.db) as uow:
        channel = await uow.session.get_one(Channel, partner.channel_id)
        await prepaid.top_up(uow, channel, Money(50_000), "bank-1", actor="test", now=MARCH)
        await prepaid.top_up(uow, channel, Money(50_000), "bank-1", actor="test", now=MARCH)  # the same transfer again
        await prepaid.top_up(uow, channel, Money(7_000), "bank-2", actor="test", now=MARCH)
    delivered = await delivered_order(shop.db, partner.channel, (shop.extra["quarter"], 4), at=MARCH, from_balance=True)
    undelivered = await paid_order(shop.db, partner.channel, (shop.extra["ten"], 2), at=MARCH, from_balance=True)
    assert await prepaid_books(shop.db, partner.channel_id) == (57_000 - 10_000 - 2_000,) * 3

    await refund(shop.db, delivered, at=MARCH + timedelta(hours=1))
    async with _uow(shop.db) as uow:  # a paid order refunded before delivery gets its money back too
        await hooks.line_refunded(uow.session, undelivered.line_ids[0], MARCH + timedelta(hours=1))
        await hooks.line_refunded(uow.session, undelivered.line_ids[0], MARCH + timedelta(hours=2))

    assert await prepaid_books(shop.db, partner.channel_id) == (57_000,) * 3
    assert await unbalanced_transactions(shop.db) == []


async def test_random_orders_refunds_and_rates_keep_the_books_balanced_and_the_statement_exact(shop: Shop) -> None:
    chooser = random.Random(20261125)
    skus: list[StockedSku] = [shop.extra["ten"], shop.extra["quarter"]]
    unit = {skus[0].pk: (1000, 900), skus[1].pk: (2500, 2250)}
    for _ in range(3):
        bp = chooser.randrange(0, 2_000)
        partner = await new_partner(shop.db, commission_bp=bp)
        expected = {"gross": 0, "cost": 0, "commission": 0, "refunds": 0, "refunded_commission": 0, "orders": 0}
        for n in range(chooser.randrange(3, 8)):
            picked = chooser.sample(skus, chooser.randrange(1, 3))
            lines = [(sku, chooser.randrange(1, 6)) for sku in picked]
            at = MARCH + timedelta(hours=n)
            order = await delivered_order(shop.db, partner.channel, *lines, at=at)
            expected["orders"] += 1
            refunded = chooser.random() < 0.3
            for sku, quantity in lines:
                price, cost = unit[sku.pk]
                commission = Money(price * quantity).apply_rate(commission_rate(bp)).minor
                expected["gross"] += price * quantity
                expected["cost"] += cost * quantity
                expected["commission"] += commission
                if refunded:
                    expected["refunds"] += price * quantity
                    expected["refunded_commission"] += commission
            if refunded:
                await refund(shop.db, order, at=at + timedelta(minutes=5))

        async with _uow(shop.db) as uow:
            statement = await statements.generate(
                uow, Party.CHANNEL, partner.channel, MARCH - timedelta(days=1), MARCH + timedelta(days=1), now=MARCH + timedelta(days=30),
            )
        margin = expected["gross"] - expected["cost"] - expected["commission"]
        net = expected["gross"] - expected["refunds"] - (expected["commission"] - expected["refunded_commission"])
        assert (statement.gross_fen, statement.cost_fen, statement.commission_fen, statement.margin_fen,
                statement.refunds_fen, statement.net_fen, statement.order_count) == (
            expected["gross"], expected["cost"], expected["commission"], margin, expected["refunds"], net, expected["orders"],
        )
    assert await unbalanced_transactions(shop.db) == []


async def test_the_supplier_balance_is_deposits_less_delivered_cost(shop: Shop) -> None:
    async with shop.db.sessions() as session, session.begin():
        supplier = await rows.supplier(session, "押金供应商")
    partner = await new_partner(shop.db)
    async with _uow(shop.db) as uow:
        assert await ledger.post_supplier_deposit(uow.session, supplier.id, Money(100_000), "wire-1", MARCH, "test")
        assert not await ledger.post_supplier_deposit(uow.session, supplier.id, Money(100_000), "wire-1", MARCH, "test")
    await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 5), at=MARCH, supplier_id=supplier.id)

    async with shop.db.sessions() as session:
        assert await ledger.supplier_balance(session, supplier.id) == 100_000 - 4_500
        assert await ledger.account_sum(session, Account.SUPPLIER, supplier_id=supplier.id) == 100_000 - 4_500


async def test_concurrent_deliveries_of_one_line_post_it_once(shop: Shop) -> None:
    partner = await new_partner(shop.db)
    order = await paid_order(shop.db, partner.channel, (shop.extra["ten"], 2), at=MARCH)

    async def post() -> None:
        async with _uow(shop.db) as uow:
            await ledger.post_delivery(uow.session, order.line_ids[0], supplier_id=None, at=MARCH)
            await hooks.line_refunded(uow.session, order.line_ids[0], MARCH + timedelta(hours=1))

    await asyncio.gather(*(post() for _ in range(4)))

    assert [(kind, account) for kind, account, *_ in await entries(shop, order.line_ids[0])] == [
        ("DELIVERY", "CHANNEL"), ("DELIVERY", "SUPPLIER"), ("DELIVERY", "COMMISSION"), ("DELIVERY", "MARGIN"),
        ("REFUND", "CHANNEL"), ("REFUND", "SUPPLIER"), ("REFUND", "COMMISSION"), ("REFUND", "MARGIN"),
    ]
