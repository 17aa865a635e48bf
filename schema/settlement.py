"""Settlement types: statements with totals and lines, reconciliation reports."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain import settlement as domain
from domain.access import may_read_costs
from models import Reconciliation, ReconciliationItem
from models import SettlementStatement as StatementRow
from schema.context import Info
from schema.money import Money
from schema.relay import (
    Node,
    PageInfo,
    decode_cursor,
    encode_cursor,
    encode_id,
    page_info,
    page_size,
)
from services.settlement import figures as statement_figures
from services.settlement import reconciliation

SettlementParty = strawberry.enum(domain.Party, description="Whom a statement settles with.")
StatementStatus = strawberry.enum(domain.StatementStatus, description="DRAFT → CONFIRMED (frozen) → PAID.")
DiscrepancyKind = strawberry.enum(domain.Discrepancy, description="How the two sides' records differ.")

MAX_LINES_PAGE = 500


@strawberry.type(description=(
    "A statement's figures. gross = supplierCost + commission + margin, to the fen. "
    "supplierCost and margin are for operators only: null for a partner."
))
class SettlementTotals:
    gross: Money = strawberry.field(description="Buyers' payments for the lines delivered.")
    commission: Money = strawberry.field(description="The channel's commission at its rate, rounded once per line.")
    refunds: Money = strawberry.field(description="Gross refunded; refunded cost and commission come back with it.")
    discount: Money = strawberry.field(description=(
        "What coupons took off the buyers' payments for the lines, less what refunds gave back of it; `gross` is "
        "what the buyers paid. Booked to whoever bears each campaign (the lines show it per line)."
    ))
    prepaid: Money = strawberry.field(description=(
        "A channel: the part of gross − refunds it already paid from its prepaid balance (a refund of a "
        "line paid from the balance went back to the balance). A supplier: 0."
    ))
    net: Money = strawberry.field(description=(
        "What is still owed. A channel: gross − refunds − (commission − refunded commission) − prepaid; "
        "positive, the channel owes it; negative, it is owed to the channel. "
        "A supplier: what its deliveries cost, supplier cost − refunded cost."
    ))
    order_count: int = strawberry.field(description="Orders with a line delivered in the statement.")
    _cost: strawberry.Private[Money]
    _margin: strawberry.Private[Money]

    @strawberry.field(description="What the suppliers charged for the lines; operators only.")
    def supplier_cost(self, info: Info) -> Money | None:
        return self._cost if may_read_costs(info.context.principal) else None

    @strawberry.field(description="The platform's margin: gross − cost − commission; may be negative. Operators only.")
    def margin(self, info: Info) -> Money | None:
        return self._margin if may_read_costs(info.context.principal) else None


@strawberry.type(description="One order line of a statement.")
class SettlementLine:
    order_number: str
    external_order_number: str = strawberry.field(description="The order's idempotency key: a partner's own order number.")
    sku: str = strawberry.field(description="The SKU's code.")
    quantity: int
    gross: Money
    commission: Money
    refunded: Money = strawberry.field(description="Gross refunded in this statement.")
    discount: Money = strawberry.field(description=(
        "What a coupon took off the line; `gross` is what the buyer paid. The discount is booked to whoever "
        "bears the campaign: the platform's marketing cost, the channel's commission, or the supplier's cost."
    ))
    _cost: strawberry.Private[Money]
    _margin: strawberry.Private[Money]

    @classmethod
    def of(cls, line: statement_figures.Line, currency: str) -> SettlementLine:
        return cls(
            order_number=line.order_number, external_order_number=line.external_order_number, sku=line.sku_code,
            quantity=line.quantity, gross=Money.fen(line.gross, currency), _cost=Money.fen(line.cost, currency),
            commission=Money.fen(line.commission, currency), _margin=Money.fen(line.margin, currency),
            refunded=Money.fen(line.refunded, currency), discount=Money.fen(line.discount, currency),
        )

    @strawberry.field(description="The supplier's cost of the line; operators only.")
    def cost(self, info: Info) -> Money | None:
        return self._cost if may_read_costs(info.context.principal) else None

    @strawberry.field(description="The platform's margin on the line; operators only.")
    def margin(self, info: Info) -> Money | None:
        return self._margin if may_read_costs(info.context.principal) else None


@strawberry.type
class SettlementLineEdge:
    cursor: str
    node: SettlementLine


@strawberry.type
class SettlementLineConnection:
    edges: list[SettlementLineEdge]
    page_info: PageInfo


@strawberry.type(description="One difference between their records and ours.")
class ReconciliationDiscrepancy:
    kind: DiscrepancyKind  # type: ignore[valid-type]
    external_order_number: str
    our_amount: Money | None
    their_amount: Money | None
    our_status: str | None
    their_status: str | None

    @classmethod
    def of(cls, row: ReconciliationItem, currency: str) -> ReconciliationDiscrepancy:
        def money(fen: int | None) -> Money | None:
            return Money.fen(fen, currency) if fen is not None else None

        return cls(
            kind=row.kind, external_order_number=row.order_number, our_amount=money(row.our_amount_fen),
            their_amount=money(row.their_amount_fen), our_status=row.our_status, their_status=row.their_status,
        )


@strawberry.type(description="The other side's records compared with a statement.")
class ReconciliationReport(Node):
    statement_id: strawberry.ID
    at: datetime
    actor: str
    records: int = strawberry.field(description="Records they sent.")
    matched: int = strawberry.field(description="Their records that agree with ours.")
    missing_on_their_side: int
    missing_on_our_side: int
    amount_mismatches: int
    status_mismatches: int
    _pk: strawberry.Private[int]
    _currency: strawberry.Private[str]

    @classmethod
    def from_model(cls, row: Reconciliation, currency: str) -> ReconciliationReport:
        return cls(
            id=encode_id("ReconciliationReport", row.id), statement_id=encode_id("SettlementStatement", row.statement_id),
            at=row.at, actor=row.actor, records=row.records, matched=row.matched,
            missing_on_their_side=row.missing_on_their_side, missing_on_our_side=row.missing_on_our_side,
            amount_mismatches=row.amount_mismatches, status_mismatches=row.status_mismatches, _pk=row.id, _currency=currency,
        )

    @strawberry.field(description="Every difference, by order number.")
    async def discrepancies(self, info: Info) -> list[ReconciliationDiscrepancy]:
        async with info.context.db.fresh_sessions() as session:
            rows = await reconciliation.items_of(session, self._pk)
        return [ReconciliationDiscrepancy.of(row, self._currency) for row in rows]


@strawberry.type(description="What is settled with a channel or a supplier for a period.")
class SettlementStatement(Node):
    party: SettlementParty  # type: ignore[valid-type]
    code: str = strawberry.field(description="The channel's or supplier's code.")
    period_start: datetime = strawberry.field(description="In the statement's time zone.")
    period_end: datetime = strawberry.field(description="In the statement's time zone.")
    time_zone: str = strawberry.field(
        description="The IANA zone whose days, weeks or months the period is: the channel's settlement zone "
        "(suppliers: Asia/Shanghai)."
    )
    status: StatementStatus  # type: ignore[valid-type]
    totals: SettlementTotals
    generated_at: datetime
    confirmed_at: datetime | None
    paid_at: datetime | None
    _row: strawberry.Private[StatementRow]

    @classmethod
    def from_model(cls, row: StatementRow) -> SettlementStatement:
        def money(fen: int) -> Money:
            return Money.fen(fen, row.currency)

        totals = SettlementTotals(
            gross=money(row.gross_fen), _cost=money(row.cost_fen), commission=money(row.commission_fen),
            _margin=money(row.margin_fen), refunds=money(row.refunds_fen), prepaid=money(row.prepaid_fen),
            discount=money(row.discount_fen), net=money(row.net_fen),
            order_count=row.order_count,
        )
        return cls(
            id=encode_id("SettlementStatement", row.id), party=row.party, code=row.code,
            period_start=domain.in_zone(row.period_start, row.time_zone),
            period_end=domain.in_zone(row.period_end, row.time_zone), time_zone=row.time_zone,
            status=row.status, totals=totals,
            generated_at=row.generated_at, confirmed_at=row.confirmed_at, paid_at=row.paid_at, _row=row,
        )

    @strawberry.field(description="A line per order line, in order-line order (at most 500 a page).")
    async def lines(self, info: Info, first: int | None = 100, after: str | None = None) -> SettlementLineConnection:
        limit = page_size(first, default=100, maximum=MAX_LINES_PAGE)
        after_id = decode_cursor(after, "SettlementLine") if after is not None else None
        async with info.context.db.fresh_sessions() as session:
            found = await statement_figures.lines(session, self._row, after=after_id, limit=limit + 1)
        more, found = len(found) > limit, found[:limit]
        edges = [
            SettlementLineEdge(cursor=encode_cursor("SettlementLine", line.line_id), node=SettlementLine.of(line, self._row.currency))
            for line in found
        ]
        return SettlementLineConnection(edges=edges, page_info=page_info([e.cursor for e in edges], more=more, after=after_id))

    @strawberry.field(description="Reconciliation reports of this statement, newest first.")
    async def reconciliations(self, info: Info) -> list[ReconciliationReport]:
        async with info.context.db.fresh_sessions() as session:
            found = await reconciliation.reports_of(session, [self._row.id])
        return [ReconciliationReport.from_model(row, self._row.currency) for row in found[self._row.id]]


@strawberry.type
class SettlementStatementEdge:
    cursor: str
    node: SettlementStatement


@strawberry.type
class SettlementStatementConnection:
    edges: list[SettlementStatementEdge]
    page_info: PageInfo
