"""POST /webhooks/payment: the payment provider tells us an order was paid."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from broker import Broker
from config import Settings
from services.core.database import Database
from services.core.unit_of_work import UnitOfWork
from services.payments import notifications as payments
from transport.media import BodyTooLarge, bounded_body

log = logging.getLogger("quanyi.webhooks")

MAX_BODY_BYTES = 64 * 1024

_STATUS = {
    payments.Result.PAID: 200,
    payments.Result.ALREADY_PAID: 200,
    payments.Result.DUPLICATE: 200,
    # Accepted: the payment is recorded as owed back, so the provider must stop retrying.
    payments.Result.REFUND_REQUESTED: 200,
    payments.Result.UNKNOWN_ORDER: 404,
    payments.Result.AMOUNT_MISMATCH: 422,
}


class PaymentWebhook:
    """Verifies the signature before reading the body as anything but bytes, then
    applies the notification in one unit of work."""

    def __init__(
        self, settings: Settings, db: Database, broker: Broker, on_event: Callable[[str, bytes], None] | None = None
    ) -> None:
        self._secret = settings.payment_webhook_secret
        self._tolerance = settings.payment_webhook_tolerance_seconds
        self._db = db
        self._broker = broker
        self._on_event = on_event

    async def handle(self, request: Request) -> JSONResponse:
        if not self._secret:
            return _error(503, "NOT_CONFIGURED", "the payment webhook has no secret configured")
        try:
            body = await bounded_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return _error(413, "TOO_LARGE", f"notifications are limited to {MAX_BODY_BYTES} bytes")
        except ClientDisconnect:
            return _error(400, "MALFORMED", "the client went away mid-request")
        now = datetime.now(UTC)
        try:
            payments.verify(
                self._secret,
                request.headers.get("x-quanyi-timestamp"),
                request.headers.get("x-quanyi-signature"),
                body,
                now=now,
                tolerance=self._tolerance,
            )
        except payments.SignatureRejected as rejected:
            log.warning("payment notification refused: %s", rejected)
            return _error(401, "BAD_SIGNATURE", str(rejected))
        try:
            notification = payments.parse(body)
        except payments.MalformedNotification as malformed:
            log.warning("payment notification malformed: %s", malformed)
            return _error(400, "MALFORMED", str(malformed))
        async with UnitOfWork(self._db, self._broker, self._on_event) as uow:
            handled = await payments.apply(uow, notification, now=now)
        # Logged after commit, and only the id and the order number: never amounts or secrets.
        # A payment owed back is a warning: an operator will see money go out again.
        status = _STATUS[handled.result]
        owed_back = handled.result is payments.Result.REFUND_REQUESTED
        level = logging.INFO if status == 200 and not owed_back else logging.WARNING
        log.log(
            level, "payment notification %s for order %s: %s",
            notification.id, notification.order_number, handled.code or handled.result.value,
        )
        if status != 200:
            return _error(status, handled.code, handled.message)
        answer = {"status": handled.result.value, "orderNumber": notification.order_number}
        if handled.message:
            answer["message"] = handled.message
        return JSONResponse(answer)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status)
