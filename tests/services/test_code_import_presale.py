"""Orders taken on presale get the imported codes, oldest order first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from broker import MemoryBroker
from domain.card_codes import CodeInput
from domain.catalog import SkuKind, StockFigures
from domain.orders import OrderStatus
from models import Allocation, CardCode, Channel, ChannelKind, Order, OrderLine, Product, Sku
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.core.unit_of_work import UnitOfWork
from services.inventory.code_import import import_codes
from services.inventory.reservation import Want, reserve
from services.inventory.stock import stock_for
from services.orders.lifecycle import cancel
from tests.services import catalog_rows as rows

NOW = datetime.now(UTC)


@dataclass(frozen=True)
class Placed:
    order_id: int
    line_id: int


@pytest.fixture(scope="module")
def shelf(import_shelf: Product) -> Product:
    return import_shelf


@pytest.fixture(scope="module")
async def channel(catalog_db: Database) -> Channel:
    async with catalog_db.sessions() as session, session.begin():
        row = Channel(
            code=rows.unique("presale-web"), name="预售渠道", kind=ChannelKind.OWN_SITE, public=True
        )
        session.add(row)
    return row


async def presale_sku(
    db: Database, shelf: Product, kind: SkuKind = SkuKind.CARD_CODE, cap: int = 10
) -> Sku:
    async with db.sessions() as session, session.begin():
        return await rows.sku(session, shelf, kind, presale_cap=cap)


async def order(
    db: Database,
    channel: Channel,
    sku: Sku,
    quantity: int,
    status: OrderStatus = OrderStatus.PENDING_PAYMENT,
) -> Placed:
    """An order line reserved the way placeOrder reserves: with no codes, all on presale."""
    async with db.sessions() as session, session.begin():
        row = Order(
            number=rows.unique("QY"),
            channel_id=channel.id,
            idempotency_key=rows.unique("key"),
            status=status,
            currency="CNY",
            total_fen=1000 * quantity,
            placed_by="test",
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(row)
        await session.flush()
        line = OrderLine(order_id=row.id, sku_id=sku.id, quantity=quantity, unit_price_fen=1000)
        session.add(line)
        await session.flush()
        reserved = await reserve(
            session, [Want(line.id, await session.get_one(Sku, sku.id), quantity)], NOW
        )
        line.presale_quantity = reserved.presale.get(line.id, 0)
        assert line.presale_quantity == quantity
    return Placed(row.id, line.id)


async def deliver(db: Database, box: SecretBox, sku: Sku, *codes: CodeInput) -> list[int]:
    async with db.sessions() as session, session.begin():
        result = await import_codes(
            session, box, await session.get_one(Sku, sku.id), list(codes), now=NOW
        )
        assert result.imported == len(codes)
        return result.served_lines


def secrets(prefix: str, count: int, uses: int | None = None) -> list[CodeInput]:
    return [
        CodeInput(row=n, secret=f"{prefix}-{rows.unique('code')}", uses=uses) for n in range(count)
    ]


async def holdings(db: Database, *placed: Placed) -> list[tuple[int, list[tuple[str, str, int]]]]:
    """Per line: units still on presale, and its allocations as (source, state, units)."""
    async with db.sessions() as session:
        result = []
        for p in placed:
            line = await session.get_one(OrderLine, p.line_id)
            allocations = await session.execute(
                select(Allocation.source, Allocation.state, Allocation.units)
                .where(Allocation.line_id == p.line_id)
                .order_by(Allocation.id)
            )
            result.append(
                (
                    line.presale_quantity,
                    [(source, state, units) for source, state, units in allocations],
                )
            )
        return result


async def codes_by_line(db: Database, sku: Sku) -> list[tuple[str, int | None]]:
    async with db.sessions() as session:
        found = await session.execute(
            select(CardCode.status, CardCode.order_line_id)
            .where(CardCode.sku_id == sku.id)
            .order_by(CardCode.id)
        )
        return [(status.value, line) for status, line in found]


async def stock(db: Database, sku: Sku) -> StockFigures:
    async with db.read_sessions() as session:
        return (await stock_for(session, [sku.id]))[sku.id]


async def presale_used(db: Database, sku: Sku) -> int:
    async with db.sessions() as session:
        return (await session.get_one(Sku, sku.id)).presale_used


async def test_the_older_presale_order_gets_its_codes_first(
    catalog_db: Database, shelf: Product, channel: Channel, box: SecretBox
) -> None:
    coins = await presale_sku(catalog_db, shelf)
    older = await order(catalog_db, channel, coins, 2)
    newer = await order(catalog_db, channel, coins, 2)
    assert await stock(catalog_db, coins) == StockFigures(available=0, reserved=0, presale=6)

    served = await deliver(catalog_db, box, coins, *secrets("QB", 3))

    assert served == [older.line_id, newer.line_id]
    assert await holdings(catalog_db, older, newer) == [
        (0, [("PRESALE", "SERVED", 0), ("CODE", "HELD", 1), ("CODE", "HELD", 1)]),
        (1, [("PRESALE", "PRESALE", 1), ("CODE", "HELD", 1)]),
    ]
    assert await codes_by_line(catalog_db, coins) == [
        ("RESERVED", older.line_id),
        ("RESERVED", older.line_id),
        ("RESERVED", newer.line_id),
    ]
    assert await presale_used(catalog_db, coins) == 1
    assert await stock(catalog_db, coins) == StockFigures(available=0, reserved=3, presale=9)


async def test_the_next_import_finishes_the_waiting_order_and_the_rest_is_for_sale(
    catalog_db: Database, shelf: Product, channel: Channel, box: SecretBox
) -> None:
    coins = await presale_sku(catalog_db, shelf)
    first = await order(catalog_db, channel, coins, 3)
    await deliver(catalog_db, box, coins, *secrets("QB", 1))

    served = await deliver(catalog_db, box, coins, *secrets("QB", 4))

    assert served == [first.line_id]
    assert await holdings(catalog_db, first) == [
        (
            0,
            [
                ("PRESALE", "SERVED", 0),
                ("CODE", "HELD", 1),
                ("CODE", "HELD", 1),
                ("CODE", "HELD", 1),
            ],
        ),
    ]
    assert await presale_used(catalog_db, coins) == 0
    assert await stock(catalog_db, coins) == StockFigures(available=2, reserved=3, presale=10)


async def test_a_paid_presale_order_is_served_too(
    catalog_db: Database, shelf: Product, channel: Channel, box: SecretBox
) -> None:
    coins = await presale_sku(catalog_db, shelf)
    paid = await order(catalog_db, channel, coins, 1, status=OrderStatus.PAID)

    assert await deliver(catalog_db, box, coins, *secrets("QB", 1)) == [paid.line_id]
    assert await codes_by_line(catalog_db, coins) == [("RESERVED", paid.line_id)]


async def test_a_cancelled_presale_order_gets_nothing(
    catalog_db: Database, shelf: Product, channel: Channel, box: SecretBox
) -> None:
    coins = await presale_sku(catalog_db, shelf)
    gone = await order(catalog_db, channel, coins, 2)
    async with UnitOfWork(catalog_db, MemoryBroker()) as uow:
        outcome = await cancel(
            uow, await uow.session.get_one(Order, gone.order_id), actor="test", now=NOW
        )
        assert outcome.error_code is None

    assert await deliver(catalog_db, box, coins, *secrets("QB", 2)) == []
    assert await codes_by_line(catalog_db, coins) == [("AVAILABLE", None), ("AVAILABLE", None)]
    assert await stock(catalog_db, coins) == StockFigures(available=2, reserved=0, presale=10)


async def test_a_presale_serial_order_takes_uses_across_serials(
    catalog_db: Database, shelf: Product, channel: Channel, box: SecretBox
) -> None:
    licence = await presale_sku(catalog_db, shelf, SkuKind.SERIAL)
    waiting = await order(catalog_db, channel, licence, 3)

    await deliver(
        catalog_db,
        box,
        licence,
        CodeInput(row=0, secret="SN-A", uses=2),
        CodeInput(row=1, secret="SN-B", uses=5),
    )

    assert await holdings(catalog_db, waiting) == [
        (0, [("PRESALE", "SERVED", 0), ("SERIAL", "HELD", 2), ("SERIAL", "HELD", 1)]),
    ]
    async with catalog_db.sessions() as session:
        uses = list(
            await session.scalars(
                select(CardCode.uses_left)
                .where(CardCode.sku_id == licence.id)
                .order_by(CardCode.id)
            )
        )
    assert uses == [0, 4]
    assert await stock(catalog_db, licence) == StockFigures(available=4, reserved=3, presale=10)
