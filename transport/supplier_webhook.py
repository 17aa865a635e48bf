"""POST /webhooks/supplier/{code}: a supplier reports how a top-up ended.

The adapter checks the signature before the body is read as anything but bytes; a bad
signature is 401 and a malformed body 400, both without side effects. A repeated callback
is answered 200 and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from broker import Broker
from services.core import jobs
from services.core.database import Database
from services.core.unit_of_work import UnitOfWork
from services.fulfilment.supplier_registry import SupplierRegistry
from services.fulfilment.topups import apply_callback
from suppliers.base import SignatureError
from transport.media import BodyTooLarge, bounded_body

log = logging.getLogger("quanyi.webhooks")

MAX_BODY_BYTES = 64 * 1024


class SupplierWebhook:
    def __init__(self, db: Database, broker: Broker, registry: SupplierRegistry) -> None:
        self._db, self._broker, self._registry = db, broker, registry

    async def handle(self, request: Request) -> JSONResponse:
        code = request.path_params["code"]
        found = await self._registry.by_code(code)
        if found is None:
            return _error(404, "UNKNOWN_SUPPLIER", "no such supplier")
        supplier_id, adapter = found
        try:
            body = await bounded_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return _error(413, "TOO_LARGE", f"callbacks are limited to {MAX_BODY_BYTES} bytes")
        except ClientDisconnect:
            return _error(400, "MALFORMED", "the client went away mid-request")
        now = datetime.now(UTC)
        try:
            adapter.verify_signature(request.headers, body, now)
        except SignatureError as rejected:
            log.warning("supplier %s callback refused: %s", code, rejected)
            return _error(401, "BAD_SIGNATURE", "the signature does not verify")
        try:
            result = adapter.parse_callback(body)
        except SignatureError as malformed:
            log.warning("supplier %s callback malformed: %s", code, malformed)
            return _error(400, "MALFORMED", "the callback cannot be read")
        async with UnitOfWork(self._db, self._broker) as uow:
            order_id = await apply_callback(uow.session, supplier_id, result, now)
            if order_id is not None:
                await jobs.wake(uow.session, jobs.request_fulfilment_key(order_id), now=now)
                uow.publish(jobs.JOBS_TOPIC, b"")
        return JSONResponse({"status": "applied" if order_id is not None else "ignored",
                             "requestId": result.request_id})


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status)
