"""Types of channel pricing: tiers, price changes (the audit trail), quotas, price control."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import pricing as rows
from schema.money import Money
from schema.relay import Node, encode_id


@strawberry.type(description="From `minQuantity` units on, each unit costs `price` (B2B).")
class PriceTier:
    min_quantity: int
    price: Money


@strawberry.type(description="A channel's price for a SKU; with a window it is a promotion.")
class ChannelPrice:
    channel: str
    price: Money
    starts_at: datetime | None
    ends_at: datetime | None

    @classmethod
    def from_model(cls, row: rows.ChannelPrice, channel: str, currency: str) -> ChannelPrice:
        return cls(
            channel=channel,
            price=Money.fen(row.price_fen, currency),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
        )


@strawberry.type(description="One change of a channel price: who, when, from what, to what.")
class PriceChange(Node):
    channel: str
    sku_code: str
    actor: str
    old_price: Money | None
    new_price: Money | None
    starts_at: datetime | None
    ends_at: datetime | None
    changed_at: datetime

    @classmethod
    def from_model(cls, row: rows.PriceChange, channel: str, sku_code: str, currency: str) -> PriceChange:
        def money(fen: int | None) -> Money | None:
            return Money.fen(fen, currency) if fen is not None else None

        return cls(
            id=encode_id("PriceChange", row.id),
            channel=channel,
            sku_code=sku_code,
            actor=row.actor,
            old_price=money(row.old_price_fen),
            new_price=money(row.new_price_fen),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            changed_at=row.changed_at,
        )


@strawberry.type(description="A channel's cap on a SKU over the shared pool.")
class ChannelQuota:
    channel: str
    quota: int
    used: int
    remaining: int


@strawberry.type(description="Price control (控价): no channel price below the floor or above the ceiling.")
class PriceControl:
    floor: Money | None
    ceiling: Money | None
