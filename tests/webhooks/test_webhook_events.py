"""Each event is told where it happens: statements, refunds, suppliers failing, stock running low."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from domain.analytics import LOW_STOCK_UNITS
from domain.catalog import CodeStatus
from models import CardCode
from services.inventory.stock import stock_for
from suppliers.base import Outcome
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Receiver

GENERATE = """
mutation Generate($input: GenerateSettlementInput!) {
  generateSettlementStatement(input: $input) { statement { id } userErrors { code message } }
}
"""
CONFIRM = "mutation Confirm($id: ID!) { confirmSettlementStatement(id: $id) { statement { status } userErrors { code } } }"


def _events(receiver: Receiver, path: str) -> list[dict]:
    return [json.loads(request.body) for request in receiver.at(path)]


async def test_a_confirmed_statement_is_told_to_its_channels_partner_only(clean: Hooks, receiver: Receiver) -> None:
    await clean.endpoint(f"{receiver.url}/b2b-statements", ["statement.confirmed"], key=clean.keys.b2b)
    await clean.endpoint(f"{receiver.url}/taobao-statements", ["statement.confirmed"], key=clean.keys.taobao)
    generated = await clean.gql(GENERATE, {"input": {"party": "CHANNEL", "code": "b2b-demo",
                                                     "periodStart": "2024-03-01T00:00:00+08:00",
                                                     "periodEnd": "2024-04-01T00:00:00+08:00"}}, key=clean.keys.admin)
    statement = generated["data"]["generateSettlementStatement"]["statement"]
    confirmed = await clean.gql(CONFIRM, {"id": statement["id"]}, key=clean.keys.admin)
    assert confirmed["data"]["confirmSettlementStatement"]["statement"] == {"status": "CONFIRMED"}
    await clean.send_all()
    [event] = _events(receiver, "/b2b-statements")
    assert (event["type"], event["data"]["statementId"], event["data"]["code"], event["data"]["status"]) == (
        "statement.confirmed", statement["id"], "b2b-demo", "CONFIRMED")
    assert _events(receiver, "/taobao-statements") == []


async def test_a_supplier_failing_everything_is_told_and_the_refund_too(clean: Hooks, receiver: Receiver) -> None:
    await clean.endpoint(f"{receiver.url}/ops", ["supplier.failing", "order.refunded"], key=clean.keys.admin)
    for fake in clean.suppliers.values():
        fake.reset(default=Outcome.FAILED)
    try:
        orders = [await clean.place(("GS-60", 1)) for _ in range(3)]
        for order in orders:
            await clean.pay(order)
        await clean.send_all(rounds=80)
    finally:
        for fake in clean.suppliers.values():
            fake.reset(default=Outcome.SUCCEEDED)
        clean.app.state.supplier_health.forget()
    told = _events(receiver, "/ops")
    failing = [e["data"]["supplier"] for e in told if e["type"] == "supplier.failing"]
    assert "sim-fast" in failing and len(failing) == len(set(failing))  # once per supplier going down
    refunded = {e["data"]["number"]: e["data"]["refund"] for e in told if e["type"] == "order.refunded"}
    assert refunded == {order["number"]: {"amount": "6.00", "currency": "CNY"} for order in orders}


async def test_stock_running_low_is_told_once_when_a_sale_crosses_the_line(clean: Hooks, receiver: Receiver) -> None:
    await clean.endpoint(f"{receiver.url}/stock", ["stock.low"], key=clean.keys.admin)
    sku_id = clean.demo.skus["STEAM-100"]
    async with clean.db.sessions() as session, session.begin():
        available = (await stock_for(session, [sku_id]))[sku_id].available
        surplus = available - (LOW_STOCK_UNITS + 1)  # leave one unit above the line
        if surplus > 0:
            spare = (await session.scalars(select(CardCode.id).where(
                CardCode.sku_id == sku_id, CardCode.status == CodeStatus.AVAILABLE).limit(surplus))).all()
            await session.execute(update(CardCode).where(CardCode.id.in_(spare)).values(status=CodeStatus.VOID))
    assert surplus >= 0
    for buyer in ("13912340001", "13912340002"):  # the first sale crosses the line, the second is below it already
        order = await clean.place(("STEAM-100", 1), phone=buyer)
        await clean.pay(order)
        await clean.send_all()
    [event] = _events(receiver, "/stock")
    assert (event["type"], event["data"]["code"], event["data"]["available"]) == ("stock.low", "STEAM-100", LOW_STOCK_UNITS)
