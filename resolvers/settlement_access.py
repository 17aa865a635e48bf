"""Which statements a caller may see: operators all, a partner its own channel's, nobody else."""

from __future__ import annotations

from domain.access import Principal, Role
from domain.settlement import may_read_statement
from models import SettlementStatement as StatementRow
from schema.context import Info
from schema.errors import Forbidden
from services.core.database import Database


def require_settlement_reader(principal: Principal) -> None:
    if not (principal.is_admin or principal.role is Role.PARTNER):
        raise Forbidden("settlement is for operators and partners")


def may_read(principal: Principal, row: StatementRow) -> bool:
    return may_read_statement(principal.is_admin, principal.channel if principal.role is Role.PARTNER else None, row.party, row.code)


async def visible_statement(db: Database, principal: Principal, pk: int) -> StatementRow | None:
    """The statement if the caller may read it; None looks the same as an unknown one."""
    async with db.fresh_sessions() as session:
        row = await session.get(StatementRow, pk)
    return row if row is not None and may_read(principal, row) else None


async def statement_for(info: Info, pk: int) -> StatementRow | None:
    return await visible_statement(info.context.db, info.context.principal, pk)
