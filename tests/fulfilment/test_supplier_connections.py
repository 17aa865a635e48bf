"""Suppliers in production: a top-up SKU none of whose suppliers can be reached is found before
a buyer pays (start-up log, /readyz, /metrics, the `suppliers` query), and a paid top-up of
it waits for an operator to connect one, for a bounded time, instead of being refunded at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from config import Settings
from gateway import create_app
from models import Refund, Supplier, TopUpTask
from schema.relay import decode_pk
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.fulfilment.supplier_registry import seal_secret
from tests.fulfilment.conftest import Fulfilling
from tests.fulfilment.fakes import FakeSupplier

SUPPLIERS = """
{ suppliers { code usable connectionProblem } }
"""
LINES = """
query Lines($id: ID!) { order(id: $id) { status lines { deliveries { channel status attempts supplier waitingSince } } } }
"""


@contextlib.asynccontextmanager
async def unreachable(f: Fulfilling, *codes: str) -> AsyncIterator[None]:
    """The suppliers' signing secrets taken away (so no top-up can be sent to them), then put back."""
    box = SecretBox(f.app.state.settings.secret_key)
    await _secrets(f, {code: None for code in codes})
    try:
        yield
    finally:
        await _secrets(f, {code: seal_secret(box, code, "fake-secret") for code in codes})


async def _secrets(f: Fulfilling, secrets: dict[str, bytes | None]) -> None:
    async with f.db.sessions() as session, session.begin():
        for code, sealed in secrets.items():
            await session.execute(update(Supplier).where(Supplier.code == code).values(secret_ciphertext=sealed))
    f.app.state.suppliers.forget()  # as an operator's change, announced on the broker, makes it


async def _refunds(f: Fulfilling, order: dict[str, Any]) -> list[str]:
    async with f.db.fresh_sessions() as session:
        return list(await session.scalars(
            select(Refund.status).where(Refund.order_id == decode_pk(order["id"], "Order"))))


async def _metrics(f: Fulfilling) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await f.http.get("/metrics", headers={"authorization": f"Bearer {f.keys.admin}"})).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text) for sample in family.samples
    }


async def test_a_paid_top_up_waits_for_a_supplier_and_goes_out_once_one_is_connected(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    async with unreachable(fulfilling, "sim-fast", "sim-backup"):
        order = await fulfilling.place(("TXV-MONTH", 1))
        await fulfilling.pay(order)
        await fulfilling.settle()

        waiting = (await fulfilling.gql(LINES, {"id": order["id"]}, key=fulfilling.keys.admin))["data"]["order"]
        (delivery,) = waiting["lines"][0]["deliveries"]
        assert (waiting["status"], delivery["channel"], delivery["status"], delivery["attempts"]) == (
            "FULFILLING", "SUPPLIER", "PENDING", 0)
        assert delivery["waitingSince"] is not None
        assert await _refunds(fulfilling, order) == []
        assert fakes["sim-fast"].submissions == fakes["sim-backup"].submissions == []
        figures = await _metrics(fulfilling)
        assert figures[("quanyi_topups_waiting_for_supplier", ())] >= 1
        assert figures[("quanyi_sku_without_usable_supplier", (("sku", "TXV-MONTH"),))] == 1
        assert figures[("quanyi_supplier_usable", (("supplier", "sim-fast"),))] == 0

    # The operator connects the suppliers again: the next look sends the top-up.
    await fulfilling.settle()

    done = (await fulfilling.gql(LINES, {"id": order["id"]}, key=fulfilling.keys.admin))["data"]["order"]
    assert done == {"status": "DELIVERED", "lines": [{"deliveries": [
        {"channel": "SUPPLIER", "status": "SENT", "attempts": 1, "supplier": "sim-fast", "waitingSince": None}]}]}
    assert [t.request_id for t in fakes["sim-fast"].submissions] == [order["number"]]
    figures = await _metrics(fulfilling)
    assert ("quanyi_sku_without_usable_supplier", (("sku", "TXV-MONTH"),)) not in figures
    assert figures[("quanyi_supplier_usable", (("supplier", "sim-fast"),))] == 1


async def test_a_top_up_waits_no_longer_than_its_bound_then_is_refunded(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    async with unreachable(fulfilling, "sim-fast", "sim-backup"):
        order = await fulfilling.place(("TXV-MONTH", 1))
        await fulfilling.pay(order)
        await fulfilling.settle()
        assert (await fulfilling.status(order))["status"] == "FULFILLING"

        # The wait (15 minutes by default) has run out.
        async with fulfilling.db.sessions() as session, session.begin():
            await session.execute(
                update(TopUpTask).where(TopUpTask.request_id.like(f"{order['number']}%"))
                .values(waiting_since=datetime.now(UTC) - timedelta(minutes=16)))
        await fulfilling.settle()

        assert (await fulfilling.status(order))["status"] == "REFUNDED"
        assert await _refunds(fulfilling, order) == ["REQUESTED"]
        assert fakes["sim-fast"].submissions == fakes["sim-backup"].submissions == []


async def test_a_supplier_that_cannot_be_reached_is_passed_over_for_one_that_can(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    async with unreachable(fulfilling, "sim-fast"):
        order = await fulfilling.place(("TXV-MONTH", 1))
        await fulfilling.pay(order)
        await fulfilling.settle()

    done = (await fulfilling.gql(LINES, {"id": order["id"]}, key=fulfilling.keys.admin))["data"]["order"]
    assert done["status"] == "DELIVERED"
    assert done["lines"][0]["deliveries"][0]["supplier"] == "sim-backup"
    assert fakes["sim-fast"].submissions == []


async def test_operators_list_suppliers_with_what_keeps_them_from_use(fulfilling: Fulfilling) -> None:
    async with unreachable(fulfilling, "sim-backup"):
        listed = await fulfilling.gql(SUPPLIERS, key=fulfilling.keys.admin)

    found = {row["code"]: row for row in listed["data"]["suppliers"]}
    assert found["sim-fast"] == {"code": "sim-fast", "usable": True, "connectionProblem": None}
    assert found["sim-backup"] == {"code": "sim-backup", "usable": False, "connectionProblem": "no signing secret"}
    refused = await fulfilling.gql(SUPPLIERS, key=fulfilling.keys.taobao)
    assert refused["data"] is None and refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_only_operators_see_which_supplier_delivered(fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]) -> None:
    order = await fulfilling.place(("TXV-MONTH", 1))
    await fulfilling.pay(order)
    await fulfilling.settle()

    as_buyer = (await fulfilling.gql(LINES, {"id": order["id"]}, key=order["token"]))["data"]["order"]
    as_operator = (await fulfilling.gql(LINES, {"id": order["id"]}, key=fulfilling.keys.admin))["data"]["order"]
    assert as_buyer["lines"][0]["deliveries"][0]["supplier"] is None
    assert as_operator["lines"][0]["deliveries"][0]["supplier"] == "sim-fast"


async def test_readyz_names_the_skus_that_cannot_deliver_and_never_a_supplier(fulfilling: Fulfilling) -> None:
    async with unreachable(fulfilling, "sim-fast", "sim-backup"):
        stranded = await fulfilling.http.get("/readyz")
    ready = await fulfilling.http.get("/readyz")

    assert stranded.status_code == 200  # everything else is served: a detail, not unreadiness
    assert stranded.json()["suppliers"]["status"] == "attention"
    assert "TXV-MONTH" in stranded.json()["suppliers"]["skusWithoutUsableSupplier"]
    assert "sim-fast" not in stranded.text and "sim-backup" not in stranded.text
    assert "TXV-MONTH" not in ready.json()["suppliers"]["skusWithoutUsableSupplier"]


async def test_start_up_names_each_sku_that_cannot_deliver(
    settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    # A gateway with no adapter of the kind its suppliers are set to: none can be reached.
    app = create_app(replace(settings, broker_prefix=f"{settings.broker_prefix}connections:"), supplier_adapters={})
    with caplog.at_level(logging.WARNING, logger="quanyi"):
        async with LifespanManager(app):
            pass

    said = [record.getMessage() for record in caplog.records if "cannot deliver top-ups" in record.getMessage()]
    assert any(line.startswith("SKU TXV-MONTH cannot deliver top-ups: no supplier with a usable connection (")
               and "sim-fast: this gateway has no" in line for line in said), said
