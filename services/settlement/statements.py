"""Settlement statements: generate (idempotent per party and period), confirm (frozen), pay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.analytics import HOME_CURRENCY
from domain.settlement import (
    Cycle,
    Party,
    SettlementError,
    StatementStatus,
    check_period,
    last_complete_period,
    next_status,
)
from models import Channel, LedgerEntry, SettlementStatement, Supplier
from services.core.unit_of_work import UnitOfWork
from services.settlement import figures
from services.webhooks import events as webhook_events
from services.webhooks import payloads

# Suppliers have no cycle or zone of their own: they settle monthly, in Beijing time.
SUPPLIER_CYCLE = Cycle.MONTHLY
SUPPLIER_TIME_ZONE = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class PartyRow:
    party: Party
    pk: int
    code: str
    currency: str
    cycle: Cycle
    time_zone: str = SUPPLIER_TIME_ZONE  # whose days, weeks and months the periods are (IANA)

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.time_zone)


async def find_party(session: AsyncSession, party: Party, code: str) -> PartyRow | None:
    if party is Party.CHANNEL:
        channel = await session.scalar(select(Channel).where(Channel.code == code))
        if channel is None:
            return None
        return PartyRow(party, channel.id, channel.code, channel.currency, Cycle(channel.settlement_cycle.value),
                        channel.settlement_time_zone)
    supplier = await session.scalar(select(Supplier).where(Supplier.code == code))
    if supplier is None:
        return None
    return PartyRow(party, supplier.id, supplier.code, HOME_CURRENCY, SUPPLIER_CYCLE)


async def generate(
    uow: UnitOfWork, party: Party, code: str, start: datetime | None, end: datetime | None, *, now: datetime
) -> SettlementStatement:
    """The statement of a party for a period (default: its cycle's last complete period),
    recomputed if it is still a DRAFT; a confirmed one is returned as it was frozen."""
    session = uow.session
    found = await find_party(session, party, code)
    if found is None:
        raise SettlementError("code", f"no {party.value.lower()} {code!r}", "UNKNOWN_PARTY")
    if start is None and end is None:
        start, end = last_complete_period(found.cycle, now, found.zone)
    if start is None or end is None:
        raise SettlementError("periodStart" if start is None else "periodEnd", "give both ends of the period, or neither")
    check_period(start, end)
    dialect = session.get_bind().dialect.name
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # The unique (party, period) index makes concurrent generations meet on one row.
    await session.execute(
        upsert(SettlementStatement)
        .values(
            party=party, party_id=found.pk, code=found.code, period_start=start, period_end=end,
            time_zone=found.time_zone,
            channel_id=found.pk if party is Party.CHANNEL else None,
            supplier_id=found.pk if party is Party.SUPPLIER else None,
            status=StatementStatus.DRAFT, currency=found.currency, generated_at=now,
            gross_fen=0, cost_fen=0, commission_fen=0, margin_fen=0, refunds_fen=0, prepaid_fen=0, discount_fen=0, net_fen=0,
            order_count=0,
        )
        .on_conflict_do_nothing(index_elements=["party", "party_id", "period_start", "period_end"])
    )
    statement = await session.scalar(
        select(SettlementStatement)
        .where(
            SettlementStatement.party == party, SettlementStatement.party_id == found.pk,
            SettlementStatement.period_start == start, SettlementStatement.period_end == end,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert statement is not None
    if statement.status is StatementStatus.DRAFT:
        figures.store(statement, await figures.totals(session, statement))
        statement.generated_at = now
        await session.flush()
    return statement


async def _locked(session: AsyncSession, statement_id: int) -> SettlementStatement | None:
    return await session.scalar(
        select(SettlementStatement).where(SettlementStatement.id == statement_id).with_for_update()
        .execution_options(populate_existing=True)
    )


async def confirm(uow: UnitOfWork, statement: SettlementStatement, *, now: datetime) -> SettlementStatement:
    """Freeze a draft: its entries are claimed by it, so a later refund settles in a later statement."""
    session = uow.session
    locked = await _locked(session, statement.id)
    assert locked is not None
    next_status(locked.status, StatementStatus.CONFIRMED)
    if locked.period_end > now:
        raise SettlementError("id", "a statement is confirmed after its period ends", "PERIOD_OPEN")
    # Set once, from NULL: the one write an entry ever sees after it was posted.
    await session.execute(
        update(LedgerEntry)
        .where(*figures.unclaimed(locked))
        .values({figures.claim_column(locked.party).key: locked.id})
        .execution_options(synchronize_session=False)
    )
    locked.status, locked.confirmed_at = StatementStatus.CONFIRMED, now
    figures.store(locked, await figures.totals(session, locked))
    await session.flush()
    # A channel's partner hears of its own statements; a supplier's are the operators' to tell.
    channel_id = locked.party_id if locked.party is Party.CHANNEL else None
    await webhook_events.emit(session, webhook_events.STATEMENT_CONFIRMED, payloads.statement(locked),
                              channel_id=channel_id, now=now)
    return locked


async def mark_paid(uow: UnitOfWork, statement: SettlementStatement, *, now: datetime) -> SettlementStatement:
    locked = await _locked(uow.session, statement.id)
    assert locked is not None
    next_status(locked.status, StatementStatus.PAID)
    locked.status, locked.paid_at = StatementStatus.PAID, now
    await uow.session.flush()
    return locked


@dataclass(frozen=True, slots=True)
class StatementFilter:
    channel_id: int | None = None
    supplier_id: int | None = None
    status: StatementStatus | None = None
    channels_only: bool = False  # a partner never sees supplier statements


async def page(
    session: AsyncSession, where: StatementFilter, *, after: int | None, limit: int
) -> tuple[list[SettlementStatement], bool]:
    """Newest first: ids descending from before `after`."""
    query = select(SettlementStatement)
    if where.channel_id is not None:
        query = query.where(SettlementStatement.channel_id == where.channel_id)
    if where.supplier_id is not None:
        query = query.where(SettlementStatement.supplier_id == where.supplier_id)
    if where.status is not None:
        query = query.where(SettlementStatement.status == where.status)
    if where.channels_only:
        query = query.where(SettlementStatement.party == Party.CHANNEL)
    if after is not None:
        query = query.where(SettlementStatement.id < after)
    rows = list(await session.scalars(query.order_by(SettlementStatement.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
