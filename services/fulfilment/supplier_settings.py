"""How the gateway reaches a supplier: set by operators, the secret sealed before it is stored."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from models import Supplier
from services.core.database import rows_changed
from services.core.secret_box import SecretBox
from services.fulfilment.supplier_registry import seal_secret


class UnknownSupplier(ValueError):
    pass


async def configure(
    session: AsyncSession, box: SecretBox, code: str, *, base_url: str, secret: str, adapter: str = "http",
    timeout_seconds: float = 5.0,
) -> None:
    """Point supplier `code` at `base_url`. Running gateways build each adapter once: restart
    them to use new settings."""
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
