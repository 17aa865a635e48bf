"""Outbound webhooks: register endpoints, read their deliveries, send one again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry

from schema.context import Info
from schema.errors import Forbidden, UserError
from schema.permissions import HasKey
from schema.relay import decode_cursor, decode_pk, encode_cursor, page_info, page_size
from schema.webhooks import (
    RedeliverWebhookPayload,
    WebhookDelivery,
    WebhookDeliveryConnection,
    WebhookDeliveryEdge,
    WebhookEndpoint,
    WebhookEndpointPayload,
)
from services.core.secret_box import SecretBox
from services.core.unit_of_work import UnitOfWork
from services.webhooks import endpoints, reads
from services.webhooks.addresses import system_resolver
from services.webhooks.audience import AUDIENCES
from services.webhooks.audience import TOPIC as AUDIENCE_CHANGED


@strawberry.input
class CreateWebhookEndpointInput:
    url: str
    events: list[str]
    channel: str | None = strawberry.field(default=None, description="Operators: one channel's events only. Partners: their own, always.")


@strawberry.input
class UpdateWebhookEndpointInput:
    id: strawberry.ID
    url: str | None = None
    events: list[str] | None = None
    enabled: bool | None = strawberry.field(default=None, description="true re-enables an endpoint disabled after failing.")


def _allowed(info: Info) -> None:
    if not endpoints.may_manage(info.context.principal):
        raise Forbidden("webhooks are managed with an ADMIN or PARTNER key")


def _box(info: Info) -> SecretBox:
    return SecretBox(info.context.settings.secret_key, info.context.settings.old_secret_keys)


async def _endpoint_command(
    info: Info, command: Callable[[UnitOfWork], Awaitable[endpoints.Registered]],
) -> WebhookEndpointPayload:
    _allowed(info)
    async with info.context.uow() as uow:
        try:
            done = await command(uow)
        except endpoints.Problem as problem:
            await uow.rollback()
            return WebhookEndpointPayload(endpoint=None, user_errors=[
                UserError(field=problem.field, message=problem.message, code=problem.code)])
        uow.publish(AUDIENCE_CHANGED, b"")  # the other processes forget who listens
    AUDIENCES.forget()  # this one at once, so the caller's next order is heard
    return WebhookEndpointPayload(endpoint=WebhookEndpoint.from_model(done.endpoint, done.channel, done.secret), user_errors=[])


@strawberry.type
class WebhooksMutation:
    @strawberry.mutation(permission_classes=[HasKey], description="Register an endpoint; its signing secret is in this answer only.")
    async def create_webhook_endpoint(self, info: Info, input: CreateWebhookEndpointInput) -> WebhookEndpointPayload:
        settings = info.context.settings
        return await _endpoint_command(info, lambda uow: endpoints.create(
            uow.session, _box(info), info.context.principal, url=input.url, wanted=input.events, channel=input.channel,
            resolve=system_resolver, allow_private=settings.webhook_allow_private, now=info.context.now,
        ))

    @strawberry.mutation(permission_classes=[HasKey], description="Change an endpoint's URL or events, or disable or enable it.")
    async def update_webhook_endpoint(self, info: Info, input: UpdateWebhookEndpointInput) -> WebhookEndpointPayload:
        pk = decode_pk(input.id, "WebhookEndpoint")
        settings = info.context.settings
        return await _endpoint_command(info, lambda uow: endpoints.change(
            uow.session, info.context.principal, pk, url=input.url, wanted=input.events, enabled=input.enabled,
            resolve=system_resolver, allow_private=settings.webhook_allow_private, now=info.context.now,
        ))

    @strawberry.mutation(permission_classes=[HasKey], description="A new signing secret, in this answer only; "
                         "the previous one keeps signing beside it for 24 hours.")
    async def rotate_webhook_secret(self, info: Info, id: strawberry.ID) -> WebhookEndpointPayload:
        pk = decode_pk(id, "WebhookEndpoint")
        return await _endpoint_command(info, lambda uow: endpoints.rotate(
            uow.session, _box(info), info.context.principal, pk, now=info.context.now))

    @strawberry.mutation(permission_classes=[HasKey], description="Delete an endpoint and its delivery log.")
    async def delete_webhook_endpoint(self, info: Info, id: strawberry.ID) -> WebhookEndpointPayload:
        pk = decode_pk(id, "WebhookEndpoint")
        return await _endpoint_command(info, lambda uow: endpoints.remove(uow.session, info.context.principal, pk))

    @strawberry.mutation(permission_classes=[HasKey], description="Send a delivered or failed delivery again (same webhook-id).")
    async def redeliver_webhook(self, info: Info, delivery_id: strawberry.ID) -> RedeliverWebhookPayload:
        _allowed(info)
        pk = decode_pk(delivery_id, "WebhookDelivery", field="deliveryId")
        async with info.context.uow() as uow:
            try:
                delivery = await endpoints.redeliver(uow.session, info.context.principal, pk, now=info.context.now)
            except endpoints.Problem as problem:
                await uow.rollback()
                return RedeliverWebhookPayload(delivery=None, user_errors=[
                    UserError(field=problem.field, message=problem.message, code=problem.code)])
            attempts = await reads.attempts_of(uow.session, [delivery.id])
        return RedeliverWebhookPayload(delivery=WebhookDelivery.from_model(delivery, attempts[delivery.id]), user_errors=[])


@strawberry.type
class WebhooksQuery:
    @strawberry.field(permission_classes=[HasKey], description="Endpoints: operators see all, a partner its channel's.")
    async def webhook_endpoints(self, info: Info) -> list[WebhookEndpoint]:
        _allowed(info)
        async with info.context.db.read_sessions() as session:
            rows = await reads.endpoints(session, info.context.principal)
        return [WebhookEndpoint.from_model(row, code) for row, code in rows]

    @strawberry.field(permission_classes=[HasKey], description="Deliveries, newest first, each with its attempts.")
    async def webhook_deliveries(
        self, info: Info, endpoint_id: strawberry.ID | None = None, first: int | None = 20, after: str | None = None,
    ) -> WebhookDeliveryConnection:
        _allowed(info)
        limit = page_size(first, default=20, maximum=info.context.settings.limits.max_page_size)
        endpoint_pk = decode_pk(endpoint_id, "WebhookEndpoint", field="endpointId") if endpoint_id is not None else None
        before = decode_cursor(after, "WebhookDelivery") if after is not None else None
        async with info.context.db.fresh_sessions() as session:
            rows, more = await reads.deliveries(session, info.context.principal, endpoint_id=endpoint_pk,
                                                before_id=before, limit=limit)
            attempts = await reads.attempts_of(session, [row.id for row in rows])
        edges = [WebhookDeliveryEdge(cursor=encode_cursor("WebhookDelivery", row.id),
                                     node=WebhookDelivery.from_model(row, attempts[row.id])) for row in rows]
        return WebhookDeliveryConnection(edges=edges, page_info=page_info([e.cursor for e in edges], more=more, after=after))
