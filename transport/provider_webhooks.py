"""POST /webhooks/wechatpay and POST /webhooks/alipay: a provider tells us a payment or a
refund happened.

The body is read as bytes and verified by the provider's adapter (its signature, and for
WeChat Pay its time and the resource's decryption) before anything else reads it; a
forgery, a stale or tampered delivery is answered as refused and changes nothing. Every
configured account of the provider is tried: the mini-program's and the H5 site's share
WeChat Pay's platform key but may differ in their merchants. A genuine notification is
applied in one unit of work (services/payments/provider_notices.py) and answered as the
provider's protocol says: WeChat Pay 204 when handled, 4xx/5xx with {code, message}
otherwise; Alipay the text `success` only when handled. Alipay's notifications carry no
time we can bound (its retries span a day): a replayed one is a duplicate, which changes
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from broker import Broker
from providers.base import NotificationRejected, PaymentNotice, PaymentProvider, Provider
from services.core.database import Database
from services.core.unit_of_work import UnitOfWork
from services.payments import provider_notices as notices
from services.payments.accounts import PaymentAccounts
from transport.media import BodyTooLarge, bounded_body

log = logging.getLogger("quanyi.webhooks")

MAX_BODY_BYTES = 64 * 1024
_STATUS = {"UNKNOWN_ORDER": 404, "UNKNOWN_PAYMENT": 404, "UNKNOWN_REFUND": 404, "WRONG_ACCOUNT": 403,
           "AMOUNT_MISMATCH": 422}


class ProviderWebhook:
    def __init__(self, provider: Provider, accounts: PaymentAccounts, db: Database, broker: Broker,
                 on_event: Callable[[str, bytes], None] | None = None) -> None:
        self._provider, self._accounts, self._db, self._broker, self._on_event = provider, accounts, db, broker, on_event
        self._name = provider.value.lower()

    async def handle(self, request: Request) -> Response:
        adapters = await self._accounts.of_provider(self._provider)
        if not adapters:
            return Response(b'{"code":"FAIL","message":"not configured"}', 503, media_type="application/json")
        replier = adapters[0]
        try:
            body = await bounded_body(request, MAX_BODY_BYTES)
        except (BodyTooLarge, ClientDisconnect):
            return _reply(replier, False, "the body is too large or incomplete", 413)
        now = datetime.now(UTC)
        notice, reason = None, "no account"
        for adapter in adapters:
            try:
                notice = adapter.verify_notification(request.headers, body, now)
            except NotificationRejected as rejected:
                reason = str(rejected)
                continue
            replier = adapter
            break
        if notice is None:
            # Logged (the reason only: never the body), and nothing written: forgeries cost no row.
            log.warning("%s notification refused: %s", self._name, reason)
            return _reply(replier, False, reason, 401)
        async with UnitOfWork(self._db, self._broker, self._on_event) as uow:
            if isinstance(notice, PaymentNotice):
                handled = await notices.apply_payment(uow, notice, now=now)
            else:
                handled = await notices.apply_refund(uow, notice, now=now)
        level = logging.INFO if handled.result in (notices.Result.PAID, notices.Result.DUPLICATE,
                                                   notices.Result.NOTHING, notices.Result.REFUND_SETTLED) \
            else logging.WARNING
        log.log(level, "%s notification for order %s: %s", self._name, notice.order_number,
                handled.code or handled.result.value)
        return _reply(replier, handled.accepted, handled.message, _STATUS.get(handled.code, 400))


def _reply(adapter: PaymentProvider, handled: bool, message: str, status: int) -> Response:
    reply = adapter.reply(handled, message, status)
    return Response(reply.body, reply.status, media_type=reply.media_type)
