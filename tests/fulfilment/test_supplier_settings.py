"""Operators point a supplier at its endpoint; the secret is stored sealed and reaches only its adapter."""

from __future__ import annotations

from uuid import uuid4

import pytest

from config import Settings
from models import Supplier
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.fulfilment.supplier_registry import SupplierRegistry
from services.fulfilment.supplier_settings import UnknownSupplier, configure
from tests.fulfilment.fakes import FakeSupplier

SECRET = "a-long-shared-signing-secret"


async def test_a_configured_supplier_gets_an_adapter_with_its_secret(settings: Settings, db: Database) -> None:
    box = SecretBox(settings.secret_key)
    code = f"cfg-{uuid4().hex[:8]}"
    async with db.sessions() as session, session.begin():
        session.add(Supplier(code=code, name="configured"))
    async with db.sessions() as session, session.begin():
        await configure(session, box, code, base_url="https://supplier.example/api", secret=SECRET, timeout_seconds=3)
    built: list[tuple[str, str | None, float, str]] = []

    def factory(row: Supplier, secret: str) -> FakeSupplier:
        built.append((row.code, row.base_url, row.timeout_seconds, secret))
        return FakeSupplier(row.code)

    registry = SupplierRegistry(db, box, {"http": factory})
    found = await registry.by_code(code)
    assert found is not None and found[1].code == code
    await registry.by_code(code)  # built once
    assert built == [(code, "https://supplier.example/api", 3.0, SECRET)]
    async with db.fresh_sessions() as session:
        row = await session.get(Supplier, found[0])
    assert row is not None and SECRET.encode() not in (row.secret_ciphertext or b"")


async def test_bad_settings_are_refused(settings: Settings, db: Database) -> None:
    box = SecretBox(settings.secret_key)
    async with db.sessions() as session, session.begin():
        with pytest.raises(UnknownSupplier):
            await configure(session, box, "no-such-supplier", base_url="https://x.example", secret=SECRET)
        with pytest.raises(ValueError, match="at least 16"):
            await configure(session, box, "sim-fast", base_url="https://x.example", secret="short")
        with pytest.raises(ValueError, match="https://"):
            await configure(session, box, "sim-fast", base_url="ftp://x.example", secret=SECRET)
