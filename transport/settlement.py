"""GET /settlement/{id}.csv (a statement's lines, streamed) and POST /settlement/{id}/reconcile
(the other side's records as CSV). Authorised like the GraphQL fields: operators any
statement, a partner its own channel's; no key 401, another kind of key 403, a statement
the caller may not see 404, exactly like an unknown one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from broker import Broker
from domain.access import Principal, Role
from domain.money import Money
from domain.settlement import in_zone
from models import SettlementStatement
from resolvers.settlement_access import visible_statement
from schema.errors import ApiError
from schema.relay import decode_pk, encode_id
from services.core.csv_cells import Cell, safe_row
from services.core.database import Database
from services.core.unit_of_work import UnitOfWork
from services.settlement import figures, reconciliation
from transport.media import BodyTooLarge, bounded_body

PAGE = 1000
COLUMNS = (
    "order_number", "external_order_number", "sku", "quantity", "gross", "cost", "commission", "margin", "refunded",
    "discount",
)
# Supplier cost and the platform's margin are for operators only: a partner's file leaves them out.
OPERATOR_ONLY = frozenset({"cost", "margin"})

PrincipalOf = Callable[[Mapping[str, str]], Awaitable[Principal]]


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status)


class SettlementFiles:
    def __init__(self, db: Database, broker: Broker, principal_of: PrincipalOf) -> None:
        self._db = db
        self._broker = broker
        self._principal_of = principal_of

    async def _statement(self, request: Request) -> tuple[Principal, SettlementStatement]:
        try:
            principal = await self._principal_of(request.headers)
        except ApiError as error:
            raise _Refused(_error(401, "UNAUTHENTICATED", error.message)) from None
        if principal.role is None:
            raise _Refused(_error(401, "UNAUTHENTICATED", "this needs a key: Authorization: Bearer <key>"))
        if not (principal.is_admin or principal.role is Role.PARTNER):
            raise _Refused(_error(403, "FORBIDDEN", "settlement is for operators and partners"))
        raw = request.path_params["id"]
        try:
            pk = int(raw) if raw.isdigit() else decode_pk(raw, "SettlementStatement")
        except ApiError:
            pk = None
        row = await visible_statement(self._db, principal, pk) if pk is not None and pk < 2**31 else None
        if row is None:
            raise _Refused(_error(404, "NOT_FOUND", "no such statement"))
        return principal, row

    async def export(self, request: Request) -> Response:
        try:
            principal, row = await self._statement(request)
        except _Refused as refused:
            return refused.response
        # The period's dates as the statement's zone has them: October in Beijing is 20261001-20261101.
        start, end = (in_zone(moment, row.time_zone) for moment in (row.period_start, row.period_end))
        name = f"settlement-{row.code}-{start:%Y%m%d}-{end:%Y%m%d}-{row.status.value.lower()}.csv"
        columns = COLUMNS if principal.is_admin else tuple(c for c in COLUMNS if c not in OPERATOR_ONLY)
        return StreamingResponse(
            self._rows(row, columns), media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
        )

    async def _rows(self, statement: SettlementStatement, columns: tuple[str, ...]) -> AsyncIterator[str]:
        """One page of lines at a time, each read in a short session of its own.

        Every cell goes through `safe_row`: the external order number is the partner's own
        text, and a spreadsheet must never run it as a formula.
        """
        yield _csv_rows([columns])
        after: int | None = None
        while True:
            async with self._db.fresh_sessions() as session:
                page = await figures.lines(session, statement, after=after, limit=PAGE)
            if not page:
                return
            yield _csv_rows(
                [cells[c] for c in columns] for cells in (_cells(line, statement.currency) for line in page)
            )
            after = page[-1].line_id
            if len(page) < PAGE:
                return

    async def reconcile(self, request: Request) -> Response:
        try:
            principal, row = await self._statement(request)
        except _Refused as refused:
            return refused.response
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != "text/csv":
            return _error(415, "UNSUPPORTED_MEDIA_TYPE", "send the records as text/csv")
        try:
            body = await bounded_body(request, reconciliation.MAX_CSV_BYTES)
        except BodyTooLarge:
            return _error(413, "TOO_LARGE", f"a file is limited to {reconciliation.MAX_CSV_BYTES} bytes")
        except ClientDisconnect:
            return _error(400, "MALFORMED", "the client went away mid-request")
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _error(400, "MALFORMED", "the file is not UTF-8 text")
        parsed = reconciliation.parse_csv(text, row.currency)
        async with UnitOfWork(self._db, self._broker) as uow:
            filed = await reconciliation.file_report(uow, row, parsed, actor=principal.actor, now=datetime.now(UTC))
        if filed.report is None:
            errors = [{"row": e.row, "field": e.field, "message": e.message, "code": e.code} for e in filed.errors]
            return _error(422, "INVALID_RECORDS", "nothing was stored: correct these rows and send the file again", errors=errors)
        report = filed.report
        return JSONResponse({
            "id": _report_id(report.id), "records": report.records, "matched": report.matched,
            "missingOnTheirSide": report.missing_on_their_side, "missingOnOurSide": report.missing_on_our_side,
            "amountMismatches": report.amount_mismatches, "statusMismatches": report.status_mismatches,
        })

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/settlement/{id}.csv", self.export, methods=["GET", "HEAD"]),
            Route("/settlement/{id}/reconcile", self.reconcile, methods=["POST"]),
        ]


def _report_id(pk: int) -> str:
    return str(encode_id("ReconciliationReport", pk))


def _cells(line: figures.Line, currency: str) -> dict[str, Cell]:
    def amount(fen: int) -> Decimal:
        return Money(fen, currency).amount

    return {
        "order_number": line.order_number, "external_order_number": line.external_order_number,
        "sku": line.sku_code, "quantity": line.quantity, "gross": amount(line.gross), "cost": amount(line.cost),
        "commission": amount(line.commission), "margin": amount(line.margin), "refunded": amount(line.refunded),
        "discount": amount(line.discount),
    }


def _csv_rows(rows: Iterable[Iterable[Cell]]) -> str:
    chunk = io.StringIO()
    writer = csv.writer(chunk, lineterminator="\n")
    writer.writerows(safe_row(row) for row in rows)
    return chunk.getvalue()
