"""Adapters built once per supplier from its Supplier row, chosen by the row's adapter kind.

An operator's change to a supplier is announced on the broker (SUPPLIERS_CHANGED): every
process then drops the adapters it built, and the next top-up builds them again from the
rows as they are now, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from sqlalchemy import select

from broker import Broker
from broker.follow import follow
from models import Supplier
from services.core.database import Database
from services.core.events import SUPPLIERS_CHANGED
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
        # Adapters dropped while a top-up may still be using them: closed at shutdown.
        self._retired: list[SupplierAdapter] = []

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

    async def problem(self, row: Supplier) -> str | None:
        """Why a top-up cannot be sent to this supplier, or None when it can."""
        if row.archived_at is not None or not row.active:
            return "archived" if row.archived_at is not None else "inactive"
        if await self.adapter(row.id) is not None:
            return None
        if row.adapter not in self._factories:
            return f"this gateway has no {row.adapter!r} adapter"
        if row.secret_ciphertext is None:
            return "no signing secret"
        if not row.base_url:
            return "no base URL"
        return "its connection settings are incomplete"

    def _build(self, row: Supplier) -> SupplierAdapter | None:
        factory = self._factories.get(row.adapter)
        if factory is None or row.secret_ciphertext is None:
            log.warning("supplier %s has no usable connection settings; it is skipped", row.code)
            return None
        return factory(row, self._box.open(row.secret_ciphertext, context=_context(row.code)))

    def forget(self) -> None:
        """Build every adapter again on its next use, from its row as it is then."""
        self._retired.extend(adapter for adapter in self._adapters.values() if adapter is not None)
        self._adapters.clear()

    def on_event(self, topic: str, message: bytes = b"") -> None:
        """This process's own changes, heard before they go out on the broker."""
        if topic == SUPPLIERS_CHANGED:
            self.forget()

    async def follow(self, broker: Broker) -> None:
        """Drop the adapters whenever a supplier changes, in any process, until cancelled."""
        await follow(broker, SUPPLIERS_CHANGED, lambda _: self.forget(), on_lost=self.forget,
                     what="supplier change events")

    async def close(self) -> None:
        self.forget()
        retired, self._retired = self._retired, []
        for adapter in {id(adapter): adapter for adapter in retired}.values():
            await adapter.close()
