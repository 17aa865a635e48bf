"""Outbound webhook types: endpoints, deliveries and their attempts."""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import WebhookAttempt as AttemptRow
from models import WebhookDelivery as DeliveryRow
from models import WebhookEndpoint as EndpointRow
from schema.errors import UserError
from schema.relay import PageInfo, encode_id


@strawberry.type(description="Where events are sent, signed per Standard Webhooks.")
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    events: list[str]
    channel: str | None = strawberry.field(description="Null: every channel's events and the platform's.")
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    secret: str | None = strawberry.field(
        default=None, description="The signing secret (whsec_…): only in the answer that made it, never again."
    )

    @classmethod
    def from_model(cls, row: EndpointRow, channel: str | None, secret: str | None = None) -> WebhookEndpoint:
        return cls(id=encode_id("WebhookEndpoint", row.id), url=row.url, events=list(row.events), channel=channel,
                   enabled=row.enabled, disabled_reason=row.disabled_reason, created_at=row.created_at, secret=secret)


@strawberry.type(description="One request to the receiver and its answer.")
class WebhookAttempt:
    at: datetime
    status_code: int | None = strawberry.field(description="Null: no answer (see error).")
    duration_ms: int
    error: str | None
    response: str | None = strawberry.field(description="The start of the receiver's answer (500 bytes at most).")

    @classmethod
    def from_model(cls, row: AttemptRow) -> WebhookAttempt:
        return cls(at=row.at, status_code=row.status_code, duration_ms=row.duration_ms, error=row.error,
                   response=row.response)


@strawberry.type(description="One event for one endpoint: PENDING (being sent or retried), DELIVERED or FAILED.")
class WebhookDelivery:
    id: strawberry.ID
    endpoint_id: strawberry.ID
    event_type: str
    message_id: str = strawberry.field(description="The webhook-id header: the same on every attempt and redelivery.")
    status: str
    attempt_count: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    payload: str = strawberry.field(description="The body sent, as JSON.")
    attempts: list[WebhookAttempt]

    @classmethod
    def from_model(cls, row: DeliveryRow, attempts: list[AttemptRow]) -> WebhookDelivery:
        return cls(
            id=encode_id("WebhookDelivery", row.id), endpoint_id=encode_id("WebhookEndpoint", row.endpoint_id),
            event_type=row.event_type, message_id=row.message_id, status=row.status, attempt_count=row.attempts,
            next_attempt_at=row.next_attempt_at, created_at=row.created_at, delivered_at=row.delivered_at,
            payload=row.body, attempts=[WebhookAttempt.from_model(a) for a in attempts],
        )


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDelivery


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo


@strawberry.type
class WebhookEndpointPayload:
    endpoint: WebhookEndpoint | None
    user_errors: list[UserError]


@strawberry.type
class RedeliverWebhookPayload:
    delivery: WebhookDelivery | None
    user_errors: list[UserError]
