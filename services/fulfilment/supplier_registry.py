"""Adapters built once per supplier from its Supplier row, chosen by the row's adapter kind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from sqlalchemy import select

from models import Supplier
from services.core.database import Database
from services.core.secret_box import SecretBox
from suppliers.base import SupplierAdapter

log = logging.getLogger("quanyi.suppliers")

# Builds an adapter from a supplier row and its decrypted signing secret.
Factory = Callable[[Supplier, str], SupplierAdapter | None]


def seal_secret(box: SecretBox, code: str, secret: str) -> bytes:
    """A supplier's signing secret as stored: encrypted and bound to the supplier's code."""
    return box.seal(secret, context=_context(code))


def _context(code: str) -> bytes:
    return b"supplier:" + code.encode()


class SupplierRegistry:
    """`adapter(supplier_id)` is the supplier's adapter, or None when the supplier cannot be
    reached (no factory for its kind, no base URL or secret): such a supplier is skipped."""

    def __init__(self, db: Database, box: SecretBox, factories: Mapping[str, Factory]) -> None:
        self._db = db
        self._box = box
        self._factories = dict(factories)
        self._adapters: dict[int, SupplierAdapter | None] = {}
        self._codes: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def adapter(self, supplier_id: int) -> SupplierAdapter | None:
        if supplier_id not in self._adapters:
            async with self._lock:
                if supplier_id not in self._adapters:
                    async with self._db.fresh_sessions() as session:
                        row = await session.get(Supplier, supplier_id)
                    self._adapters[supplier_id] = self._build(row) if row is not None else None
        return self._adapters[supplier_id]

    async def by_code(self, code: str) -> tuple[int, SupplierAdapter] | None:
        if code not in self._codes:
            async with self._db.fresh_sessions() as session:
                supplier_id = await session.scalar(select(Supplier.id).where(Supplier.code == code))
            if supplier_id is None:
                return None
            self._codes[code] = supplier_id
        adapter = await self.adapter(self._codes[code])
        return (self._codes[code], adapter) if adapter is not None else None

    def _build(self, row: Supplier) -> SupplierAdapter | None:
        factory = self._factories.get(row.adapter)
        if factory is None or row.secret_ciphertext is None:
            log.warning("supplier %s has no usable connection settings; it is skipped", row.code)
            return None
        return factory(row, self._box.open(row.secret_ciphertext, context=_context(row.code)))

    async def close(self) -> None:
        for adapter in self._adapters.values():
            if adapter is not None:
                await adapter.close()
        self._adapters.clear()
