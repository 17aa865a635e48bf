"""Adding codes to a SKU's pool: checked, encrypted, de-duplicated, then presale served.

A batch is one multi-row INSERT ... ON CONFLICT DO NOTHING on the unique secret_digest
of every code not VOID, whatever its SKU: the keyed digest finds duplicates without
decrypting anything, and the database, not a read beforehand, decides between two
imports of the same code running at once, into one SKU or two. Everything happens in
the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.card_codes import CleanCode, CodeInput, Rejection, RowRejection, check_code, duplicate
from domain.catalog import CodeStatus
from models import CardCode, Sku
from services.core.secret_box import SecretBox
from services.inventory.presale import serve_presale

_TABLE = cast(Table, CardCode.__table__)
# The PostgreSQL advisory lock every code import takes, whatever its SKU.
_IMPORT_LOCK = (0x5159_0001, 0)


class WrongSkuKind(ValueError):
    """Only CARD_CODE and SERIAL SKUs have code pools."""

    def __init__(self, sku: Sku) -> None:
        super().__init__(
            f"SKU {sku.code} is {sku.kind.value}: only CARD_CODE and SERIAL SKUs take codes"
        )


@dataclass
class ImportResult:
    imported: int = 0
    duplicates: int = 0
    # Every row not imported, in row order: invalid ones and duplicates alike.
    rejections: list[RowRejection] = field(default_factory=list)
    # Order lines whose presale units were given codes by this import.
    served_lines: list[int] = field(default_factory=list)

    @property
    def invalid(self) -> int:
        return len(self.rejections) - self.duplicates


async def import_codes(
    session: AsyncSession, box: SecretBox, sku: Sku, rows: Iterable[CodeInput], *, now: datetime
) -> ImportResult:
    """Add `rows` to the pool of `sku`; invalid and duplicate rows are reported, never raised."""
    if not sku.kind.is_code_backed:
        raise WrongSkuKind(sku)
    result = ImportResult()
    fresh: dict[str, CleanCode] = {}
    for row in rows:
        if row.uses is None and sku.serial_uses > 1:
            row = replace(row, uses=sku.serial_uses)  # the SKU's uses per serial, unless the row says
        checked = check_code(row, sku.kind, now)
        if isinstance(checked, RowRejection):
            result.rejections.append(checked)
            continue
        digest = box.digest(checked.secret)
        if digest in fresh:
            result.rejections.append(duplicate(checked.row, earlier_in_import=True))
            continue
        fresh[digest] = checked

    inserted: set[str] = set()
    if fresh:
        await _take_turn(session)
        if box.rotating:
            for digest in await _known_under_old_keys(session, box, fresh):
                result.rejections.append(duplicate(fresh.pop(digest).row, earlier_in_import=False))
        inserted = await _insert_new(session, _sealed(box, sku, fresh, now))
    result.rejections.extend(
        duplicate(code.row, earlier_in_import=False)
        for digest, code in fresh.items()
        if digest not in inserted
    )
    result.rejections.sort(key=lambda rejection: rejection.row)
    result.imported = len(inserted)
    result.duplicates = sum(r.reason is Rejection.DUPLICATE_CODE for r in result.rejections)
    if inserted:
        result.served_lines = await serve_presale(session, sku, now)
    return result


async def _known_under_old_keys(session: AsyncSession, box: SecretBox, fresh: dict[str, CleanCode]) -> set[str]:
    """The (current) digests of codes the pool holds under an old key's digest: while the
    secret key is rotated, codes not re-sealed yet carry their old digest, which the unique
    index cannot compare with a new one."""
    olds = {old: digest for digest, code in fresh.items() for old in box.digests(code.secret)[1:]}
    found = await session.scalars(
        select(CardCode.secret_digest).where(CardCode.secret_digest.in_(list(olds)), CardCode.status != CodeStatus.VOID)
    )
    return {olds[old] for old in found}


def _sealed(
    box: SecretBox, sku: Sku, codes: dict[str, CleanCode], now: datetime
) -> list[dict[str, Any]]:
    context = str(sku.id).encode()  # binds each ciphertext to its SKU
    return [
        {
            "sku_id": sku.id,
            "secret_ciphertext": box.seal(code.secret, context=context),
            "secret_digest": digest,
            "number": code.number,
            "status": CodeStatus.AVAILABLE,
            "uses_left": code.uses,
            "expires_at": code.expires_at,
            "created_at": now,
            "order_line_id": None,
        }
        for digest, code in codes.items()
    ]


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def _take_turn(session: AsyncSession) -> None:
    """Imports take turns until their transactions end, whatever their SKUs.

    Two imports inserting the same codes in opposite orders would each wait for the
    other's uncommitted row: a deadlock. The digest is unique across SKUs, so imports
    into two SKUs can meet on a code as well. Buyers are not held up: the lock is
    advisory. SQLite already runs one write transaction at a time.
    """
    if _dialect(session) == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(*_IMPORT_LOCK)))


async def _insert_new(session: AsyncSession, values: list[dict[str, Any]]) -> set[str]:
    """Insert the rows whose digest the pool does not have yet; returns the digests inserted."""
    insert = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
    # No conflict target: a code already in the pool (any SKU) and a VOID one already in
    # this SKU (uq_card_code_sku_digest) are both duplicates.
    statement = insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.secret_digest)
    # Sent as multi-row VALUES pages (SQLAlchemy's insertmanyvalues), not one INSERT a row.
    return set((await session.execute(statement, values)).scalars())
