"""POST /marketplaces/{channel}/push: a marketplace tells of a paid trade or a refund.

The body is the open platform's signed form (app_key, timestamp, sign_method, topic,
content, sign: marketplaces/signing.py); the channel's adapter checks it before anything
else is read: a bad signature, a stale timestamp or another app's key is 401, a malformed
message 400, both without side effects. A verified message goes the way a pulled one goes
(services/marketplaces/imports.py, refunds.py), so a trade pushed and pulled is one order.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from marketplaces import wire
from marketplaces.base import SignatureError
from services.core.database import Database
from services.marketplaces.connections import Markets
from services.marketplaces.imports import PUSH, Importer
from services.marketplaces.refunds import RefundDesk
from transport.media import BodyTooLarge, bounded_body

log = logging.getLogger("quanyi.marketplaces")

MAX_BODY_BYTES = 64 * 1024


class MarketplacePush:
    def __init__(self, db: Database, markets: Markets, importer: Importer, refunds: RefundDesk) -> None:
        self._db, self._markets, self._importer, self._refunds = db, markets, importer, refunds

    async def handle(self, request: Request) -> JSONResponse:
        channel = request.path_params["channel"]
        async with self._db.fresh_sessions() as session:
            found = await self._markets.connection(session, channel=channel)
        if found is None:
            return _error(404, "UNKNOWN_MARKETPLACE", "no marketplace is connected to this channel")
        connection, adapter = found
        try:
            params = wire.form(await bounded_body(request, MAX_BODY_BYTES))
        except BodyTooLarge:
            return _error(413, "TOO_LARGE", f"pushes are limited to {MAX_BODY_BYTES} bytes")
        except (ClientDisconnect, wire.WireError):
            return _error(400, "MALFORMED", "the body is not a form")
        try:
            adapter.verify_push(params, datetime.now(UTC))
        except SignatureError as rejected:
            log.warning("marketplace %s push refused: %s", channel, rejected)
            return _error(401, "BAD_SIGNATURE", "the signature does not verify")
        try:
            pushed = adapter.parse_push(params)
        except SignatureError as malformed:
            log.warning("marketplace %s push malformed: %s", channel, malformed)
            return _error(400, "MALFORMED", "the message cannot be read")
        if not connection.enabled:
            return _error(503, "DISABLED", "the connection is disabled")
        if pushed.trade is not None:
            taken = await self._importer.take(connection, pushed.trade, PUSH)
            status = taken.status if taken is not None else "IGNORED"
        else:
            assert pushed.refund is not None
            status = await self._refunds.honour(connection, pushed.refund) or "IGNORED"
        return JSONResponse({"success": True, "status": status})


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"success": False, "error": code, "message": message}, status)
