"""Settlement: statements (generate, confirm, mark paid, list), supplier deposits, reconciliation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import settlement as domain
from domain.analytics import AnalyticsInputError, Period
from domain.money import Money as MoneyValue
from domain.money import MoneyError
from models import Channel as ChannelRow
from models import Reconciliation as ReconciliationRow
from models import SettlementStatement as StatementRow
from models import Supplier as SupplierRow
from resolvers.settlement_access import may_read, require_settlement_reader, statement_for
from schema.analytics import SupplierPerformance
from schema.context import Info
from schema.errors import BadUserInput, Forbidden, UserError
from schema.money import Money
from schema.permissions import ADMIN_ONLY
from schema.relay import Node, decode_cursor, decode_pk, encode_cursor, page_info, page_size
from schema.settlement import (
    ReconciliationReport,
    SettlementParty,
    SettlementStatement,
    SettlementStatementConnection,
    SettlementStatementEdge,
    StatementStatus,
)
from services.analytics import sales
from services.settlement import ledger, reconciliation, statements

NOT_FOUND = UserError(field="id", message="no such statement", code="NOT_FOUND")


@strawberry.input
class GenerateSettlementInput:
    party: SettlementParty  # type: ignore[valid-type]
    code: str
    period_start: datetime | None = strawberry.field(default=None, description="Default: the last complete period of the cycle.")
    period_end: datetime | None = None


@strawberry.input(description="One order as the other side records it.")
class ReconciliationRecordInput:
    external_order_number: str = strawberry.field(description="A channel's own order number; for a supplier, ours.")
    amount: str = strawberry.field(description="A decimal string such as \"9.90\".")
    status: str = strawberry.field(description="DELIVERED, or REFUNDED when refunded in full.")


@strawberry.type
class GenerateSettlementPayload:
    statement: SettlementStatement | None
    user_errors: list[UserError]


@strawberry.type
class SettlementStatementPayload:
    statement: SettlementStatement | None
    user_errors: list[UserError]


@strawberry.type
class RecordSupplierDepositPayload:
    balance: Money | None = strawberry.field(description="Deposits less the cost of deliveries, after this deposit.")
    user_errors: list[UserError]


@strawberry.type
class ReconcileStatementPayload:
    report: ReconciliationReport | None
    user_errors: list[UserError]


def _error(error: domain.SettlementError) -> list[UserError]:
    return [UserError(field=error.field, message=error.message, code=error.code)]


async def _party_id(session: AsyncSession, model: type[ChannelRow] | type[SupplierRow], field: str, code: str | None) -> int | None:
    if code is None:
        return None
    pk = await session.scalar(select(model.id).where(model.code == code))
    if pk is None:
        raise BadUserInput(f"unknown {field} {code!r}", field=field)
    return pk


async def settlement_node(info: Info, type_name: str, pk: int) -> Node | None:
    if type_name == "SettlementStatement":
        row = await statement_for(info, pk)
        return SettlementStatement.from_model(row) if row else None
    if type_name == "ReconciliationReport":
        return await _report(info, pk)
    return None


async def _report(info: Info, pk: int) -> ReconciliationReport | None:
    async with info.context.db.fresh_sessions() as session:
        report = await session.get(ReconciliationRow, pk)
    row = await statement_for(info, report.statement_id) if report is not None else None
    return ReconciliationReport.from_model(report, row.currency) if report is not None and row is not None else None


@strawberry.type
class SettlementQuery:
    @strawberry.field(description="Statements, newest first: operators see all, a partner its own channel's.")
    async def settlement_statements(
        self, info: Info, channel: str | None = None, supplier: str | None = None,
        status: StatementStatus | None = None,  # type: ignore[valid-type]
        first: int | None = 20, after: str | None = None,
    ) -> SettlementStatementConnection:
        principal = info.context.principal
        require_settlement_reader(principal)
        if not principal.is_admin:
            if supplier is not None:
                raise Forbidden("supplier statements are for operators", field="supplier")
            if channel is not None and channel != principal.channel:
                raise Forbidden("a partner reads its own channel's statements", field="channel")
            channel = principal.channel
        limit = page_size(first, default=20, maximum=100)
        after_id = decode_cursor(after, "SettlementStatement") if after is not None else None
        async with info.context.db.fresh_sessions() as session:
            where = statements.StatementFilter(
                channel_id=await _party_id(session, ChannelRow, "channel", channel),
                supplier_id=await _party_id(session, SupplierRow, "supplier", supplier),
                status=domain.StatementStatus(status.value) if status else None,
                channels_only=not principal.is_admin,
            )
            rows, more = await statements.page(session, where, after=after_id, limit=limit)
        rows = [row for row in rows if may_read(principal, row)]
        edges = [SettlementStatementEdge(cursor=encode_cursor("SettlementStatement", r.id), node=SettlementStatement.from_model(r)) for r in rows]
        return SettlementStatementConnection(edges=edges, page_info=page_info([e.cursor for e in edges], more=more, after=after_id))

    @strawberry.field(description="A reconciliation report; null when unknown or not visible.")
    async def reconciliation_report(self, info: Info, id: strawberry.ID) -> ReconciliationReport | None:
        require_settlement_reader(info.context.principal)
        return await _report(info, decode_pk(id, "ReconciliationReport"))

    @strawberry.field(permission_classes=ADMIN_ONLY, description="What we hold at a supplier: deposits less the cost of its deliveries.")
    async def supplier_balance(self, info: Info, supplier: str) -> Money:
        async with info.context.db.fresh_sessions() as session:
            supplier_id = await session.scalar(select(SupplierRow.id).where(SupplierRow.code == supplier))
            if supplier_id is None:
                raise BadUserInput(f"unknown supplier {supplier!r}", field="supplier")
            return Money.fen(await ledger.supplier_balance(session, supplier_id), "CNY")

    @strawberry.field(permission_classes=ADMIN_ONLY, description="Per supplier, lines delivered in [from, to): gross, cost, margin, refunds.")
    async def supplier_performance(
        self, info: Info, from_: Annotated[datetime, strawberry.argument(name="from")], to: datetime,
    ) -> list[SupplierPerformance]:
        try:
            period = Period.of(from_, to)
        except AnalyticsInputError as error:
            raise BadUserInput(error.message, field=error.field) from None
        async with info.context.db.read_sessions() as session:
            figures = await sales.supplier_performance(session, period)
        return [SupplierPerformance.of(f) for f in figures]


@strawberry.type
class SettlementMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Build (or rebuild, while a DRAFT) a statement for a channel or supplier.")
    async def generate_settlement_statement(self, info: Info, input: GenerateSettlementInput) -> GenerateSettlementPayload:
        party = domain.Party(input.party.value)
        try:
            async with info.context.uow() as uow:
                row = await statements.generate(uow, party, input.code, input.period_start, input.period_end, now=info.context.now)
        except domain.SettlementError as error:
            return GenerateSettlementPayload(statement=None, user_errors=_error(error))
        return GenerateSettlementPayload(statement=SettlementStatement.from_model(row), user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Freeze a DRAFT statement whose period has ended.")
    async def confirm_settlement_statement(self, info: Info, id: strawberry.ID) -> SettlementStatementPayload:
        return await _advance(info, id, statements.confirm)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Record that a CONFIRMED statement was paid.")
    async def mark_settlement_statement_paid(self, info: Info, id: strawberry.ID) -> SettlementStatementPayload:
        return await _advance(info, id, statements.mark_paid)

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description="Record money paid to a supplier in advance; the same reference again records nothing more.")
    async def record_supplier_deposit(self, info: Info, supplier: str, amount: Decimal, reference: str) -> RecordSupplierDepositPayload:
        reference = reference.strip()
        try:
            money = MoneyValue.of(amount, "CNY")
        except MoneyError as error:
            return RecordSupplierDepositPayload(balance=None, user_errors=[UserError(field="amount", message=str(error), code="INVALID_AMOUNT")])
        if not 0 < money.minor <= 10**12:
            message = "a deposit is more than zero and at most 10,000,000,000.00"
            return RecordSupplierDepositPayload(balance=None, user_errors=[UserError(field="amount", message=message, code="INVALID_AMOUNT")])
        if not 1 <= len(reference) <= 128:
            return RecordSupplierDepositPayload(balance=None, user_errors=[UserError(field="reference", message="a reference is 1 to 128 characters", code="INVALID_INPUT")])
        async with info.context.uow() as uow:
            supplier_id = await uow.session.scalar(select(SupplierRow.id).where(SupplierRow.code == supplier))
            if supplier_id is None:
                raise BadUserInput(f"unknown supplier {supplier!r}", field="supplier")
            await ledger.post_supplier_deposit(uow.session, supplier_id, money, reference, info.context.now, info.context.principal.actor)
            balance = await ledger.supplier_balance(uow.session, supplier_id)
        return RecordSupplierDepositPayload(balance=Money.fen(balance, "CNY"), user_errors=[])

    @strawberry.mutation(description="Compare the other side's records with a statement and keep the report: operators, or the channel's partner.")
    async def reconcile_statement(
        self, info: Info, statement_id: strawberry.ID, records: list[ReconciliationRecordInput]
    ) -> ReconcileStatementPayload:
        principal = info.context.principal
        require_settlement_reader(principal)
        row = await statement_for(info, decode_pk(statement_id, "SettlementStatement", field="statementId"))
        if row is None:
            return ReconcileStatementPayload(report=None, user_errors=[UserError(field="statementId", message="no such statement", code="NOT_FOUND")])
        parsed = [
            domain.parse_record(i, r.external_order_number, r.amount, r.status, row.currency) for i, r in enumerate(records, start=1)
        ]
        async with info.context.uow() as uow:
            filed = await reconciliation.file_report(uow, row, parsed, actor=principal.actor, now=info.context.now)
        if filed.report is None:
            errors = [UserError(field=_record_field(e), message=e.message, code=e.code) for e in filed.errors]
            return ReconcileStatementPayload(report=None, user_errors=errors)
        return ReconcileStatementPayload(report=ReconciliationReport.from_model(filed.report, row.currency), user_errors=[])


def _record_field(error: domain.RowError) -> str:
    return "records" if error.field == "records" else f"records.{error.row - 1}.{error.field}"


Step = Callable[..., Awaitable[StatementRow]]


async def _advance(info: Info, id: strawberry.ID, step: Step) -> SettlementStatementPayload:
    pk = decode_pk(id, "SettlementStatement")
    try:
        async with info.context.uow() as uow:
            row = await uow.session.get(StatementRow, pk)
            if row is None:
                return SettlementStatementPayload(statement=None, user_errors=[NOT_FOUND])
            row = await step(uow, row, now=info.context.now)
    except domain.SettlementError as error:
        return SettlementStatementPayload(statement=None, user_errors=_error(error))
    return SettlementStatementPayload(statement=SettlementStatement.from_model(row), user_errors=[])
