"""Registering webhook endpoints: who may listen to what, and the signing secret.

Operators register endpoints for any event, for every channel or one; a partner's key
registers endpoints for its own channel's events only (the channel is its key's, whatever
the input says, and another channel named is refused). The signing secret is made here,
returned once, and kept sealed (services/core/secret_box.py) under a context naming its
endpoint, so a sealed secret copied to another row does not open. Rotating keeps the
previous secret signing beside the new one for `ROTATION_GRACE`, so receivers can switch
without losing a message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import Principal, Role, may_read_channel_private
from models import Channel, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.core import jobs
from services.core.secret_box import SecretBox
from services.webhooks import events, signing
from services.webhooks.addresses import Refused, Resolver, check

ROTATION_GRACE = timedelta(hours=24)
MAX_ENDPOINTS_PER_CHANNEL = 20  # a partner's key cannot fill the table (nor the fan-out of each event)


class Problem(Exception):
    def __init__(self, field: str | None, code: str, message: str) -> None:
        super().__init__(message)
        self.field, self.code, self.message = field, code, message


@dataclass(frozen=True, slots=True)
class Registered:
    endpoint: WebhookEndpoint
    channel: str | None
    secret: str | None = None  # only when just made


def _context(endpoint_id: int) -> bytes:
    return f"webhook-endpoint:{endpoint_id}".encode()


def open_secrets(box: SecretBox, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous while its grace lasts."""
    secrets = [box.open(endpoint.secret_sealed, context=_context(endpoint.id))]
    if endpoint.previous_secret_sealed is not None and endpoint.previous_secret_until is not None \
            and endpoint.previous_secret_until > now:
        secrets.append(box.open(endpoint.previous_secret_sealed, context=_context(endpoint.id)))
    return secrets


def may_manage(principal: Principal) -> bool:
    return principal.is_admin or (principal.role is Role.PARTNER and principal.channel is not None)


async def _channel_for(session: AsyncSession, principal: Principal, requested: str | None) -> tuple[int | None, str | None]:
    if not principal.is_admin:
        if requested is not None and requested != principal.channel:
            raise Problem("channel", "FORBIDDEN_CHANNEL", "a partner registers endpoints for its own channel only")
        requested = principal.channel
        assert requested is not None and may_read_channel_private(principal, requested)
    if requested is None:
        return None, None
    channel_id = await session.scalar(select(Channel.id).where(Channel.code == requested))
    if channel_id is None:
        raise Problem("channel", "UNKNOWN_CHANNEL", f"no channel {requested!r}")
    return channel_id, requested


def _events(principal: Principal, channel_id: int | None, wanted: Sequence[str]) -> list[str]:
    chosen = sorted(set(wanted))
    if not chosen:
        raise Problem("events", "NO_EVENTS", "an endpoint listens to at least one event")
    unknown = [name for name in chosen if name not in events.EVENT_TYPES]
    if unknown:
        raise Problem("events", "UNKNOWN_EVENT", f"unknown events {unknown}; known: {list(events.EVENT_TYPES)}")
    platform = [name for name in chosen if name in events.PLATFORM_EVENTS]
    if platform and not principal.is_admin:
        raise Problem("events", "EVENT_NOT_ALLOWED", f"{platform} are the operators' events")
    if platform and channel_id is not None:
        raise Problem("events", "EVENT_NOT_ALLOWED", f"{platform} belong to no channel: register them without one")
    return chosen


async def _url(url: str, resolve: Resolver, allow_private: bool) -> str:
    try:
        target, _ = await check(url, resolve, allow_private=allow_private)
    except Refused as refused:
        raise Problem("url", "URL_REFUSED", str(refused)) from None
    return str(target.url)


async def create(
    session: AsyncSession, box: SecretBox, principal: Principal, *, url: str, wanted: Sequence[str],
    channel: str | None, resolve: Resolver, allow_private: bool, now: datetime,
) -> Registered:
    channel_id, code = await _channel_for(session, principal, channel)
    chosen = _events(principal, channel_id, wanted)
    checked = await _url(url, resolve, allow_private)
    if channel_id is not None:
        count = len((await session.scalars(select(WebhookEndpoint.id).where(WebhookEndpoint.channel_id == channel_id))).all())
        if count >= MAX_ENDPOINTS_PER_CHANNEL:
            raise Problem(None, "TOO_MANY_ENDPOINTS", f"a channel has at most {MAX_ENDPOINTS_PER_CHANNEL} endpoints")
    secret = signing.new_secret()
    endpoint = WebhookEndpoint(url=checked, events=chosen, channel_id=channel_id, secret_sealed=b"", enabled=True,
                               created_by=principal.actor, created_at=now, updated_at=now)
    session.add(endpoint)
    await session.flush()  # its id seals the secret
    endpoint.secret_sealed = box.seal(secret, context=_context(endpoint.id))
    await session.flush()
    return Registered(endpoint, code, secret)


async def owned(session: AsyncSession, principal: Principal, endpoint_id: int) -> tuple[WebhookEndpoint, str | None] | None:
    """The endpoint if the caller may manage it: operators any, a partner its channel's."""
    found = (await session.execute(
        select(WebhookEndpoint, Channel.code).outerjoin(Channel, Channel.id == WebhookEndpoint.channel_id)
        .where(WebhookEndpoint.id == endpoint_id)
    )).first()
    if found is None:
        return None
    endpoint, code = found
    if not principal.is_admin and (code is None or code != principal.channel):
        return None
    return endpoint, code


async def change(
    session: AsyncSession, principal: Principal, endpoint_id: int, *, url: str | None, wanted: Sequence[str] | None,
    enabled: bool | None, resolve: Resolver, allow_private: bool, now: datetime,
) -> Registered:
    found = await owned(session, principal, endpoint_id)
    if found is None:
        raise Problem("id", "NOT_FOUND", "no such webhook endpoint")
    endpoint, code = found
    if wanted is not None:
        endpoint.events = _events(principal, endpoint.channel_id, wanted)
    if url is not None:
        endpoint.url = await _url(url, resolve, allow_private)
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        endpoint.disabled_reason = None if enabled else f"disabled by {principal.actor}"
        endpoint.failing_since = None
    endpoint.updated_at = now
    await session.flush()
    return Registered(endpoint, code)


async def rotate(session: AsyncSession, box: SecretBox, principal: Principal, endpoint_id: int, *, now: datetime) -> Registered:
    found = await owned(session, principal, endpoint_id)
    if found is None:
        raise Problem("id", "NOT_FOUND", "no such webhook endpoint")
    endpoint, code = found
    secret = signing.new_secret()
    endpoint.previous_secret_sealed = endpoint.secret_sealed
    endpoint.previous_secret_until = now + ROTATION_GRACE
    endpoint.secret_sealed = box.seal(secret, context=_context(endpoint.id))
    endpoint.updated_at = now
    await session.flush()
    return Registered(endpoint, code, secret)


async def remove(session: AsyncSession, principal: Principal, endpoint_id: int) -> Registered:
    """Delete the endpoint with its deliveries and their attempts; their jobs end unsent."""
    found = await owned(session, principal, endpoint_id)
    if found is None:
        raise Problem("id", "NOT_FOUND", "no such webhook endpoint")
    endpoint, code = found
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint_id).scalar_subquery()
    await session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    await session.delete(endpoint)
    await session.flush()
    return Registered(endpoint, code)


async def redeliver(session: AsyncSession, principal: Principal, delivery_id: int, *, now: datetime) -> WebhookDelivery:
    """Send a delivery again, with the same `webhook-id`, on a fresh retry schedule."""
    delivery = await session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update())
    if delivery is None or await owned(session, principal, delivery.endpoint_id) is None:
        raise Problem("deliveryId", "NOT_FOUND", "no such webhook delivery")
    endpoint = await session.get(WebhookEndpoint, delivery.endpoint_id)
    assert endpoint is not None
    if not endpoint.enabled:
        raise Problem("deliveryId", "ENDPOINT_DISABLED", "enable the endpoint first (updateWebhookEndpoint)")
    if delivery.status == events.PENDING:
        raise Problem("deliveryId", "ALREADY_PENDING", "the delivery is still being sent")
    delivery.status, delivery.next_attempt_at = events.PENDING, now
    await session.flush()
    await jobs.enqueue(session, events.WEBHOOK, events.job_key(delivery.id, uuid.uuid4().hex[:12]), now=now,
                       payload={"delivery": delivery.id, "from": delivery.attempts})
    return delivery
