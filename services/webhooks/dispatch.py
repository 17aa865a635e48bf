"""Sending deliveries from the job worker: sign, send, record the attempt, retry or give up.

A delivery is sent by its job, never from the request that caused it. Nothing is held
open while the receiver is asked: the delivery is read in one short transaction, sent,
and the attempt recorded with the delivery's new state and the job's end in another.

Failures retry on `SCHEDULE` (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts
over a little more than a day), each delay jittered by ±20 % so that the deliveries of a
receiver that comes back do not all arrive at once. A delivery whose last attempt fails is
FAILED (it can be sent again by hand: `redeliverWebhook`); if its endpoint has then failed
every attempt for `disable_after` (a day), the endpoint is disabled and operators are told
(a warning on `quanyi.webhooks`, and `quanyi_webhook_endpoints_disabled_total`, which
ops/alerts.yml watches).

One endpoint takes at most `per_endpoint` sending slots of a process: a slow receiver
waits its turn (its jobs are postponed a moment) instead of holding the worker's other
receivers up. The webhook worker is a worker of its own (gateway.py), so receivers never
take the slots that fulfil orders either.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from services.core import telemetry
from services.core.secret_box import SecretBox
from services.core.unit_of_work import UnitOfWork
from services.core.worker import Handler, JobRun
from services.webhooks import events, signing
from services.webhooks.audience import TOPIC as AUDIENCE_CHANGED
from services.webhooks.endpoints import open_secrets
from services.webhooks.receivers import Answer, Receiver

log = logging.getLogger("quanyi.webhooks")

SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
PER_ENDPOINT = 4  # sending slots one endpoint may take in a process
BUSY_DELAY = 0.5  # seconds before a job finding its endpoint's slots taken looks again


def _now() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    def __init__(
        self, box: SecretBox, receiver: Receiver, *, schedule: Sequence[float] = SCHEDULE,
        disable_after: timedelta = timedelta(days=1), per_endpoint: int = PER_ENDPOINT, clock: Callable[[], datetime] = _now,
    ) -> None:
        self._box, self._receiver = box, receiver
        self._schedule = tuple(schedule)
        self._disable_after = disable_after
        self._per_endpoint = per_endpoint
        self._clock = clock
        self._busy: Counter[int] = Counter()

    def handlers(self) -> dict[str, Handler]:
        return {events.WEBHOOK: self.send}

    async def close(self) -> None:
        await self._receiver.close()

    async def send(self, run: JobRun) -> None:
        ready = await self._ready(run)
        if ready is None:
            return
        delivery, endpoint, now = ready
        try:
            body = delivery.body.encode()
            secrets = open_secrets(self._box, endpoint, now)
            headers = signing.headers(secrets, delivery.message_id, int(self._clock().timestamp()), body)
            answer = await self._receiver.send(endpoint.url, headers, body)
        finally:
            self._release(endpoint.id)
        telemetry.webhook_attempt("delivered" if answer.ok else "failed", answer.duration_ms / 1000)
        await self._record(run, delivery, endpoint.id, answer)

    async def _ready(self, run: JobRun) -> tuple[WebhookDelivery, WebhookEndpoint, datetime] | None:
        """The delivery to send and its endpoint, with one of the endpoint's sending slots
        taken; None when the run ended here (settled already, endpoint disabled, slots taken)."""
        delivery_id = int(run.job.payload["delivery"])  # type: ignore[call-overload]
        taken: int | None = None
        try:
            async with run.uow() as uow:
                found = (await uow.session.execute(
                    select(WebhookDelivery, WebhookEndpoint)
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .where(WebhookDelivery.id == delivery_id)
                )).first()
                now = self._clock()
                if found is None or found[0].status != events.PENDING:
                    await run.done(uow, now)  # deleted with its endpoint, or settled already
                    return None
                delivery, endpoint = found
                if not endpoint.enabled:
                    await self._settle(uow, delivery, events.FAILED, now)
                    await run.done(uow, now)
                    return None
                if self._busy[endpoint.id] >= self._per_endpoint:
                    await run.later(uow, now, BUSY_DELAY * (1 + random.random()))
                    return None
                # Taken with no await since the check: concurrent runs cannot all pass it.
                self._busy[endpoint.id] += 1
                taken = endpoint.id
        except BaseException:
            if taken is not None:
                self._release(taken)
            raise
        return delivery, endpoint, now

    def _release(self, endpoint_id: int) -> None:
        self._busy[endpoint_id] -= 1
        if not self._busy[endpoint_id]:
            del self._busy[endpoint_id]

    async def _record(self, run: JobRun, delivery: WebhookDelivery, endpoint_id: int, answer: Answer) -> None:
        """The attempt, the delivery's new state, the endpoint's, and the job's end: one transaction."""
        attempts = delivery.attempts + 1
        # The endpoint by id, not its URL: a URL may carry a receiver's own token.
        log.info("webhook delivery %d (%s) to endpoint %d: attempt %d %s in %d ms", delivery.id, delivery.event_type,
                 endpoint_id, attempts, answer.status_code or answer.error, answer.duration_ms)
        async with run.uow() as uow:
            now = self._clock()
            session = uow.session
            session.add(WebhookAttempt(delivery_id=delivery.id, at=now, status_code=answer.status_code,
                                       duration_ms=answer.duration_ms, error=answer.error, response=answer.response))
            if answer.ok:
                await self._settle(uow, delivery, events.DELIVERED, now, attempts=attempts)
                await session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                                      .values(failing_since=None).execution_options(synchronize_session=False))
                await run.done(uow, now)
                return
            await session.execute(
                update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.failing_since.is_(None))
                .values(failing_since=now).execution_options(synchronize_session=False)
            )
            # A redelivery by hand counts on from the delivery's attempts; the schedule restarts for it.
            round_attempts = attempts - int(run.job.payload.get("from", 0))  # type: ignore[call-overload]
            if round_attempts <= len(self._schedule):
                delay = self._schedule[round_attempts - 1] * random.uniform(0.8, 1.2)
                await self._settle(uow, delivery, events.PENDING, now, attempts=attempts,
                                   next_attempt_at=now + timedelta(seconds=delay))
                await run.later(uow, now, delay)
                return
            await self._settle(uow, delivery, events.FAILED, now, attempts=attempts)
            await self._maybe_disable(uow, endpoint_id, now)
            await run.done(uow, now)

    async def _settle(self, uow: UnitOfWork, delivery: WebhookDelivery, status: str, now: datetime, *,
                      attempts: int | None = None, next_attempt_at: datetime | None = None) -> None:
        values: dict[str, object] = {"status": status, "next_attempt_at": next_attempt_at}
        if attempts is not None:
            values["attempts"] = attempts
        if status == events.DELIVERED:
            values["delivered_at"] = now
        await uow.session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(**values)
            .execution_options(synchronize_session=False)
        )

    async def _maybe_disable(self, uow: UnitOfWork, endpoint_id: int, now: datetime) -> None:
        """Disable the endpoint if every attempt has failed for `disable_after`."""
        result = await uow.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True),
                   WebhookEndpoint.failing_since <= now - self._disable_after)
            .values(enabled=False, updated_at=now, disabled_reason="every attempt failed for a day or more")
            .returning(WebhookEndpoint.url)
            .execution_options(synchronize_session=False)
        )
        url = result.scalar_one_or_none()
        if url is not None:
            uow.publish(AUDIENCE_CHANGED, b"")
            telemetry.webhook_endpoint_disabled()
            log.warning("webhook endpoint %d disabled: every attempt failed for %s", endpoint_id, self._disable_after)
