"""Order rows for analytics tests, written with the placement time and status a figure depends on."""

from __future__ import annotations

import itertools
from datetime import datetime

from domain.orders import OrderStatus
from domain.risk import Decision
from models import Order, OrderLine, RiskVerdict, Sku
from services.core.database import Database

_numbers = itertools.count(1)


async def order(
    db: Database, channel_id: int, status: OrderStatus, at: datetime, *lines: tuple[Sku, int],
    currency: str = "CNY", paid_at: datetime | None = None,
) -> list[int]:
    """An order placed at `at`, each line at its SKU's base price, now in `status`; its line ids."""
    number = f"R{next(_numbers):08d}"
    async with db.sessions() as session, session.begin():
        row = Order(
            number=number, channel_id=channel_id, idempotency_key=number, status=status, currency=currency,
            total_fen=sum(sku.base_price_fen * quantity for sku, quantity in lines), placed_by="test",
            created_at=at, updated_at=at, paid_at=paid_at,
        )
        session.add(row)
        await session.flush()
        made = [
            OrderLine(order_id=row.id, sku_id=sku.id, quantity=quantity, unit_price_fen=sku.base_price_fen)
            for sku, quantity in lines
        ]
        session.add_all(made)
        await session.flush()
        return [line.id for line in made]


async def verdict(db: Database, channel_id: int, decision: Decision, at: datetime, *rules: str) -> None:
    """A stored risk verdict on an attempt at `at`, flagged by `rules`."""
    number = f"V{next(_numbers):08d}"
    reasons = [{"rule": rule, "observed": "x", "threshold": "y", "action": decision.value, "score": 50} for rule in rules]
    async with db.sessions() as session, session.begin():
        session.add(RiskVerdict(channel_id=channel_id, idempotency_key=number, decision=decision, score=50 * len(rules),
                                reasons=reasons, facts={}, created_at=at))
