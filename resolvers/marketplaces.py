"""Marketplace connectors, for operators: the trades taken and their delivery reports, the
connections, and a failed report sent again."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.errors import UserError
from schema.marketplaces import (
    MarketplaceConnection,
    MarketplaceTrade,
    MarketplaceTradeConnection,
    MarketplaceTradeEdge,
    ResolveMarketplaceRefundPayload,
    RetryMarketplaceDeliveryPayload,
    RetryMarketplaceImportPayload,
)
from schema.payments import Refund
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_cursor, decode_pk, encode_cursor, page_info, page_size
from services.core.jobs import JOBS_TOPIC
from services.marketplaces import reads, refund_decisions, reports


@strawberry.type
class MarketplacesQuery:
    @strawberry.field(permission_classes=ADMIN_ONLY, description=(
        "Trades taken from marketplaces, newest first: imported, failed (with the reason) or cancelled, "
        "and how each delivery was reported back."))
    async def marketplace_trades(
        self, info: Info, channel: str | None = None, status: str | None = None, report_status: str | None = None,
        first: int | None = 20, after: str | None = None,
    ) -> MarketplaceTradeConnection:
        limit = page_size(first, default=20, maximum=info.context.settings.limits.max_page_size)
        before = decode_cursor(after, "MarketplaceTrade") if after is not None else None
        async with info.context.db.fresh_sessions() as session:
            rows, more = await reads.trades(session, channel=channel, status=status, report_status=report_status,
                                            before_id=before, limit=limit)
        edges = [MarketplaceTradeEdge(cursor=encode_cursor("MarketplaceTrade", row.id),
                                      node=MarketplaceTrade.from_model(row, code, number)) for row, code, number in rows]
        return MarketplaceTradeConnection(edges=edges, page_info=page_info([e.cursor for e in edges], more=more, after=after))

    @strawberry.field(permission_classes=ADMIN_ONLY, description="Each channel's marketplace and how far its pulls have come.")
    async def marketplace_connections(self, info: Info) -> list[MarketplaceConnection]:
        async with info.context.db.fresh_sessions() as session:
            rows = await reads.connections(session)
        return [MarketplaceConnection.from_model(row, code) for row, code in rows]


@strawberry.type
class MarketplacesMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "Report a delivery whose report FAILED to its marketplace again (its retries start over)."))
    async def retry_marketplace_delivery(self, info: Info, id: strawberry.ID) -> RetryMarketplaceDeliveryPayload:
        pk = decode_pk(id, "MarketplaceTrade")
        async with info.context.uow() as uow:
            record = await reports.retry(uow.session, pk, info.context.now)
            if record is None:
                return RetryMarketplaceDeliveryPayload(trade=None, user_errors=[UserError(
                    field="id", code="INVALID_STATE", message="only a delivery report that FAILED can be retried")])
            shown = await reads.trade(uow.session, record.id)
            uow.publish(JOBS_TOPIC, b"")
        assert shown is not None
        return RetryMarketplaceDeliveryPayload(trade=MarketplaceTrade.from_model(*shown), user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "Agree to or refuse a refund a marketplace's buyer asked for after delivery (a REQUESTED Refund on "
        "Order.refunds), once. Agreeing refunds the order and books the reversal on the ledger; the decision is "
        "reported to the marketplace (with retries), which returns the buyer's money if agreed."))
    async def resolve_marketplace_refund(
        self, info: Info, id: strawberry.ID, agree: bool, reason: str | None = None,
    ) -> ResolveMarketplaceRefundPayload:
        pk = decode_pk(id, "Refund")
        why = (reason or "").strip()
        if not agree and not why:
            return ResolveMarketplaceRefundPayload(refund=None, trade=None, user_errors=[UserError(
                field="reason", code="INVALID_INPUT", message="say why the refund is refused: the buyer reads it")])
        async with info.context.uow() as uow:
            decided = await refund_decisions.resolve(uow, pk, agree=agree, reason=why,
                                                     actor=info.context.principal.actor, now=info.context.now)
            if decided.refund is None:
                return ResolveMarketplaceRefundPayload(refund=None, trade=None, user_errors=[UserError(
                    field="id", code=decided.error_code or "INVALID_STATE", message=decided.message)])
            shown = await reads.trade_of_order(uow.session, decided.refund.order_id)
            uow.publish(JOBS_TOPIC, b"")
        return ResolveMarketplaceRefundPayload(
            refund=Refund.from_model(decided.refund), trade=MarketplaceTrade.from_model(*shown) if shown else None,
            user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "Import again a marketplace trade whose import FAILED (stock came in, its outer id is mapped now): the "
        "trade is read again from the marketplace and imported once. Refused for a trade that is not FAILED."))
    async def retry_marketplace_import(self, info: Info, id: strawberry.ID) -> RetryMarketplaceImportPayload:
        pk = decode_pk(id, "MarketplaceTrade")
        retrier = info.context.marketplace_imports
        if retrier is None:
            return RetryMarketplaceImportPayload(trade=None, user_errors=[UserError(
                field="id", code="MARKETPLACE_UNAVAILABLE", message="marketplaces are not served here")])
        retried = await retrier.retry(pk)
        errors = [] if retried.error_code is None else [
            UserError(field="id", code=retried.error_code, message=retried.message)]
        if retried.taken is None:
            return RetryMarketplaceImportPayload(trade=None, user_errors=errors)
        async with info.context.db.fresh_sessions() as session:
            shown = await reads.trade(session, retried.taken.record_id)
        return RetryMarketplaceImportPayload(
            trade=MarketplaceTrade.from_model(*shown) if shown else None, user_errors=errors)
