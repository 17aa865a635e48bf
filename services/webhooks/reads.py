"""What `webhookEndpoints` and `webhookDeliveries` read: newest first, a caller's own only."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import Principal
from models import Channel, WebhookAttempt, WebhookDelivery, WebhookEndpoint


def _visible(principal: Principal) -> object:
    """Operators see every endpoint; a partner its channel's."""
    if principal.is_admin:
        return WebhookEndpoint.id.is_not(None)
    return WebhookEndpoint.channel_id.in_(select(Channel.id).where(Channel.code == principal.channel))


async def endpoints(session: AsyncSession, principal: Principal) -> list[tuple[WebhookEndpoint, str | None]]:
    rows = await session.execute(
        select(WebhookEndpoint, Channel.code).outerjoin(Channel, Channel.id == WebhookEndpoint.channel_id)
        .where(_visible(principal)).order_by(WebhookEndpoint.id)  # type: ignore[arg-type]
    )
    return [(endpoint, code) for endpoint, code in rows]


async def deliveries(
    session: AsyncSession, principal: Principal, *, endpoint_id: int | None, before_id: int | None, limit: int,
) -> tuple[list[WebhookDelivery], bool]:
    """A page of deliveries (newest first) and whether more follow."""
    query = (
        select(WebhookDelivery).join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(_visible(principal))  # type: ignore[arg-type]
    )
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if before_id is not None:
        query = query.where(WebhookDelivery.id < before_id)
    rows = list(await session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


async def attempts_of(session: AsyncSession, delivery_ids: list[int]) -> dict[int, list[WebhookAttempt]]:
    """The attempts of a page of deliveries, in one statement, oldest first."""
    found: dict[int, list[WebhookAttempt]] = defaultdict(list)
    if delivery_ids:
        for attempt in await session.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids)).order_by(WebhookAttempt.id)
        ):
            found[attempt.delivery_id].append(attempt)
    return found
