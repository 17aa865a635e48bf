"""How the gateway reaches a supplier: set by operators, the secret sealed before it is stored.

Running gateways follow a change at once: the caller announces it (SUPPLIERS_CHANGED) after
its transaction commits, and every process builds the supplier's adapter again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Supplier
from services.core.database import rows_changed
from services.core.secret_box import SecretBox
from services.fulfilment.supplier_registry import seal_secret

ADAPTERS = ("http",)


class UnknownSupplier(ValueError):
    pass


class BadConnection(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True, slots=True)
class Connection:
    """Settings to change; None leaves one as it is. The secret is never read back."""

    base_url: str | None = None
    secret: str | None = None
    timeout_seconds: float | None = None
    adapter: str | None = None

    def check(self) -> None:
        if self.base_url is not None and (
            not self.base_url.startswith(("https://", "http://")) or len(self.base_url) > 500
            or not self.base_url.isascii() or any(ch.isspace() for ch in self.base_url)
        ):
            raise BadConnection("baseUrl", "the base URL starts with https:// (or http:// on a private network)")
        if self.secret is not None and not 16 <= len(self.secret) <= 200:
            raise BadConnection("secret", "a supplier's signing secret is 16 to 200 characters")
        if self.timeout_seconds is not None and not 0 < self.timeout_seconds <= 60:
            raise BadConnection("timeoutSeconds", "the timeout is more than 0 and at most 60 seconds")
        if self.adapter is not None and self.adapter not in ADAPTERS:
            raise BadConnection("adapter", f"one of {', '.join(ADAPTERS)}")


async def connect(session: AsyncSession, box: SecretBox, supplier_id: int, connection: Connection) -> dict[str, object]:
    """Change a supplier's connection; what it is now (never the secret, only whether one is set)."""
    connection.check()
    code = await session.scalar(select(Supplier.code).where(Supplier.id == supplier_id))
    if code is None:
        raise UnknownSupplier("no such supplier")
    values: dict[str, object] = {}
    if connection.base_url is not None:
        values["base_url"] = connection.base_url
    if connection.secret is not None:
        values["secret_ciphertext"] = seal_secret(box, code, connection.secret)
    if connection.timeout_seconds is not None:
        values["timeout_seconds"] = connection.timeout_seconds
    if connection.adapter is not None:
        values["adapter"] = connection.adapter
    if values:
        await session.execute(update(Supplier).where(Supplier.id == supplier_id).values(**values)
                              .execution_options(synchronize_session=False))
    row = (await session.execute(
        select(Supplier.adapter, Supplier.base_url, Supplier.timeout_seconds, Supplier.secret_ciphertext.is_not(None))
        .where(Supplier.id == supplier_id)
    )).one()
    return {"adapter": row[0], "baseUrl": row[1], "timeoutSeconds": row[2], "secretSet": bool(row[3])}


async def configure(
    session: AsyncSession, box: SecretBox, code: str, *, base_url: str, secret: str, adapter: str = "http",
    timeout_seconds: float = 5.0,
) -> None:
    """Point supplier `code` at `base_url` (the command line's way)."""
    if not base_url.startswith(("https://", "http://")):
        raise ValueError("the base URL starts with https:// (or http:// on a private network)")
    if len(secret) < 16:
        raise ValueError("a supplier's signing secret is at least 16 characters")
    if not 0 < timeout_seconds <= 60:
        raise ValueError("the timeout is more than 0 and at most 60 seconds")
    result = await session.execute(
        update(Supplier).where(Supplier.code == code).values(
            adapter=adapter, base_url=base_url, secret_ciphertext=seal_secret(box, code, secret),
            timeout_seconds=timeout_seconds,
        )
    )
    if rows_changed(result) != 1:
        raise UnknownSupplier(f"no supplier with the code {code!r}")
