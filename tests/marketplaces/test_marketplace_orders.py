"""A marketplace's buyers' orders, end to end: pulled or pushed, imported once, fulfilled,
the delivery reported back once, refunds honoured."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from domain.catalog import CodeStatus
from marketplaces import wire
from models import CardCode, MarketplaceConnection, MarketplaceOrder, Order, Sku
from services.core import jobs
from services.marketplace_events.states import REPORT, report_key
from tests.marketplaces.conftest import TRADES, Market

CONNECTIONS = "{ marketplaceConnections { channel adapter endpoint appKey pollSeconds enabled tradesCursor lastError } }"
RETRY = """
mutation Retry($id: ID!) {
  retryMarketplaceDelivery(id: $id) { trade { tid deliveryReport { status attempts } } userErrors { code } }
}
"""


async def _available(market: Market, sku: str) -> int:
    async with market.db.fresh_sessions() as session:
        return int(await session.scalar(
            select(func.count()).select_from(CardCode).join(Sku, Sku.id == CardCode.sku_id)
            .where(Sku.code == sku, CardCode.status == CodeStatus.AVAILABLE)) or 0)


async def _cursor(market: Market) -> tuple[datetime | None, str | None]:
    async with market.db.fresh_sessions() as session:
        row = (await session.execute(select(MarketplaceConnection.trades_cursor, MarketplaceConnection.last_error))).one()
    return row[0], row[1]


async def test_a_marketplace_order_is_delivered_and_reported_once_despite_duplicate_pulls(shop: Market) -> None:
    # Given a buyer who paid for two Q币 cards on the marketplace, and pages that repeat trades
    await shop.faults(duplicate_rate=1.0)
    tid = await shop.sell("QB-10", 2)
    # When the trade is pulled three times over, and every job runs
    for _ in range(3):
        await shop.pull()
    await shop.settle()
    # Then it is one delivered order of the taobao channel, with two codes
    trade = await shop.trade(tid)
    assert trade is not None
    assert (trade["status"], trade["source"], trade["seen"] >= 3) == ("IMPORTED", "PULL", True)
    assert trade["deliveryReport"] == {"status": "REPORTED", "attempts": 1, "error": None}
    order = await shop.order(tid)
    assert order["status"] == "DELIVERED" and order["lines"][0]["quantity"] == 2
    # And the marketplace recorded the delivery once, asked once
    delivered = await shop.deliveries(tid)
    assert len(delivered) == 1 and delivered[0]["requests"] == 1 and len(delivered[0]["codes"]) == 2
    assert (await shop.sim_trade(tid))["status"] == "WAIT_BUYER_CONFIRM_GOODS"
    # When the report job runs twice more (queued again, say by a retry racing the first run)
    async with shop.db.sessions() as session, session.begin():
        record_id = await session.scalar(select(MarketplaceOrder.id).where(MarketplaceOrder.tid == tid))
        await jobs.enqueue(session, REPORT, report_key(record_id, 99), now=datetime.now(UTC), payload={"record": record_id})
    await shop.settle()
    # Then nothing more is sent: the record says REPORTED
    assert (await shop.deliveries(tid))[0]["requests"] == 1


async def test_a_report_sent_again_after_a_crash_is_recorded_once_by_the_marketplace(shop: Market) -> None:
    tid = await shop.sell("QB-10")
    await shop.pull()
    await shop.settle()
    # Given a worker that died after the marketplace took the report, before it was recorded
    async with shop.db.sessions() as session, session.begin():
        record_id = await session.scalar(select(MarketplaceOrder.id).where(MarketplaceOrder.tid == tid))
        await session.execute(update(MarketplaceOrder).where(MarketplaceOrder.id == record_id)
                              .values(report_status="PENDING", report_attempts=0))
        await jobs.enqueue(session, REPORT, report_key(record_id, 7), now=datetime.now(UTC), payload={"record": record_id})
    # When the job runs again
    await shop.settle()
    # Then the marketplace answers "already delivered", which counts: one delivery there, REPORTED here
    delivered = await shop.deliveries(tid)
    assert len(delivered) == 1 and delivered[0]["requests"] == 2
    assert (await shop.trade(tid))["deliveryReport"]["status"] == "REPORTED"


async def test_a_failed_pull_leaves_the_cursor_and_the_next_one_resumes_from_it(shop: Market) -> None:
    await shop.pull()
    before, _ = await _cursor(shop)
    # Given a marketplace that fails the next pull (a 500)
    await shop.faults(fail_pulls=1)
    tid = await shop.sell("QB-10")
    # When the job pulls
    await shop.pull()
    # Then nothing is taken, the cursor stays, and the failure is shown to operators
    assert await shop.trade(tid) is None
    cursor, error = await _cursor(shop)
    assert cursor == before and "HTTP 500" in (error or "")
    # When the next run pulls, the trade is taken from the same cursor, and the error cleared
    await shop.pull()
    assert (await shop.trade(tid))["status"] == "IMPORTED"
    cursor, error = await _cursor(shop)
    assert error is None and cursor is not None and before is not None and cursor >= before


async def test_a_pushed_order_pulled_again_is_one_order(shop: Market) -> None:
    tid = await shop.sell("QB-10")
    trade = await shop.sim_trade(tid)
    # When the marketplace pushes the trade, twice, and the pull finds it too
    for _ in range(2):
        answer = await shop.push(shop.push_params(wire.TRADE_TOPIC, trade))
        assert answer.status_code == 200 and answer.json() == {"success": True, "status": "IMPORTED"}
    await shop.pull()
    await shop.settle()
    # Then there is one record, one order, delivered, and one delivery at the marketplace
    found = (await shop.gql(TRADES, {"channel": "taobao", "first": 100}, key=shop.keys.admin))["data"]
    mine = [edge["node"] for edge in found["marketplaceTrades"]["edges"] if edge["node"]["tid"] == tid]
    assert len(mine) == 1 and mine[0]["source"] == "PUSH" and mine[0]["seen"] >= 3
    assert (await shop.order(tid))["status"] == "DELIVERED"
    assert len(await shop.deliveries(tid)) == 1


async def test_a_forged_or_stale_push_is_refused_and_changes_nothing(shop: Market) -> None:
    tid = await shop.sell("QB-10")
    trade = await shop.sim_trade(tid)
    forged = shop.push_params(wire.TRADE_TOPIC, trade, secret="guessed-secret")
    stale = shop.push_params(wire.TRADE_TOPIC, trade, at=datetime.now(UTC) - timedelta(minutes=30))
    tampered = {**shop.push_params(wire.TRADE_TOPIC, trade), "content": wire.orjson_text({**trade, "payment": "0.01"})}
    unsigned = {k: v for k, v in shop.push_params(wire.TRADE_TOPIC, trade).items() if k != "sign"}
    for params in (forged, stale, tampered, unsigned):
        answer = await shop.push(params)
        assert (answer.status_code, answer.json()["error"]) == (401, "BAD_SIGNATURE")
    assert (await shop.http.post("/marketplaces/taobao/push", content=b"\xff\xfe")).status_code in (400, 401)
    assert (await shop.http.post("/marketplaces/jd/push", data=forged)).status_code == 404
    assert await shop.trade(tid) is None


async def test_an_unknown_outer_id_is_a_failed_import_shown_to_operators_and_not_retried(shop: Market) -> None:
    tid = await shop.sell("NO-SUCH-SKU")
    await shop.pull()
    await shop.pull()
    trade = await shop.trade(tid)
    assert trade is not None
    assert (trade["status"], trade["orderId"], trade["seen"]) == ("FAILED", None, 2)
    assert trade["reason"].startswith("UNKNOWN_OUTER_ID: no SKU for outer id 'NO-SUCH-SKU'")
    failed = await shop.gql(TRADES, {"status": "FAILED", "first": 100}, key=shop.keys.admin)
    assert tid in [edge["node"]["tid"] for edge in failed["data"]["marketplaceTrades"]["edges"]]


async def test_outer_ids_map_to_our_skus_and_prices_below_ours_are_refused(shop: Market) -> None:
    mapped = await shop.sell("TB-QB10")  # the connection maps TB-QB10 to QB-10
    cheap = await shop.sell("QB-10", price="0.01")
    before = await _available(shop, "QB-10")
    await shop.pull()
    assert (await shop.trade(mapped))["status"] == "IMPORTED"
    cheap_trade = await shop.trade(cheap)
    assert cheap_trade["status"] == "FAILED" and cheap_trade["reason"].startswith("PRICE_BELOW_CHANNEL_PRICE")
    assert (await shop.order(cheap))["status"] == "CANCELLED"
    assert await _available(shop, "QB-10") == before - 1  # the mapped one holds its code; the cheap one none


async def test_a_refund_before_delivery_refunds_the_order_releases_stock_and_reports_nothing(shop: Market) -> None:
    before = await _available(shop, "QB-30")
    tid = await shop.sell("QB-30", 2)
    await shop.pull()  # imported and paid; its fulfilment not run yet
    assert (await shop.order(tid))["status"] == "PAID"
    assert await _available(shop, "QB-30") == before - 2
    # When the buyer asks for a refund on the marketplace before delivery, and it is pulled
    refund = (await shop.shop.post("/control/refunds", json={"tid": tid})).json()["refund"]
    assert refund["status"] == "SUCCESS"
    await shop.pull()
    await shop.settle()
    # Then the order is refunded, never delivered, its codes back in stock, and no delivery reported
    trade = await shop.trade(tid)
    assert (trade["status"], trade["refundStatus"], trade["deliveryReport"]) == ("CANCELLED", "REFUNDED", None)
    assert (await shop.order(tid))["status"] == "REFUNDED"
    assert await _available(shop, "QB-30") == before
    assert await shop.deliveries(tid) == []


async def test_a_refund_after_delivery_is_recorded_for_operators(shop: Market) -> None:
    tid = await shop.sell("QB-10")
    await shop.pull()
    await shop.settle()
    refund = (await shop.shop.post("/control/refunds", json={"tid": tid})).json()["refund"]
    answer = await shop.push(shop.push_params(wire.REFUND_TOPIC, refund))
    assert answer.json() == {"success": True, "status": "REQUESTED"}
    trade = await shop.trade(tid)
    assert (trade["status"], trade["refundStatus"], trade["refundId"]) == ("IMPORTED", "REQUESTED", refund["refund_id"])
    assert (await shop.order(tid))["status"] == "DELIVERED"
    await shop.pull()  # the same refund pulled: nothing more
    assert (await shop.trade(tid))["refundStatus"] == "REQUESTED"


async def test_a_report_that_fails_twice_is_retried_and_reported_once(shop: Market) -> None:
    await shop.faults(fail_ships=2)
    tid = await shop.sell("QB-10")
    await shop.pull()
    await shop.settle()
    trade = await shop.trade(tid)
    assert trade["deliveryReport"] == {"status": "REPORTED", "attempts": 3, "error": None}
    delivered = await shop.deliveries(tid)
    assert len(delivered) == 1 and delivered[0]["requests"] == 1


async def test_a_report_that_keeps_failing_fails_and_operators_retry_it(shop: Market) -> None:
    await shop.faults(ship_fail_rate=1.0)
    tid = await shop.sell("QB-10")
    await shop.pull()
    await shop.settle(rounds=40)
    trade = await shop.trade(tid)
    assert trade["deliveryReport"]["status"] == "FAILED" and "HTTP 500" in trade["deliveryReport"]["error"]
    assert await shop.deliveries(tid) == []
    await shop.faults(ship_fail_rate=0.0)
    retried = await shop.gql(RETRY, {"id": trade["id"]}, key=shop.keys.admin)
    assert retried["data"]["retryMarketplaceDelivery"]["userErrors"] == []
    await shop.settle()
    assert (await shop.trade(tid))["deliveryReport"]["status"] == "REPORTED"
    assert len(await shop.deliveries(tid)) == 1
    again = await shop.gql(RETRY, {"id": trade["id"]}, key=shop.keys.admin)
    assert again["data"]["retryMarketplaceDelivery"]["userErrors"] == [{"code": "INVALID_STATE"}]


async def test_a_top_up_trade_reports_its_result(shop: Market) -> None:
    tid = await shop.sell("GS-60", account="800123456")
    await shop.pull()
    await shop.settle()
    assert (await shop.order(tid))["status"] == "DELIVERED"
    delivered = await shop.deliveries(tid)
    assert len(delivered) == 1 and delivered[0]["codes"] == [] and len(delivered[0]["topups"]) == 1


async def test_only_operators_read_marketplace_trades(shop: Market) -> None:
    for key, code in ((shop.keys.taobao, "FORBIDDEN"), (shop.keys.web, "FORBIDDEN"), (None, "UNAUTHENTICATED")):
        answer = await shop.gql(TRADES, {"first": 5}, key=key)
        assert answer.get("data") is None and answer["errors"][0]["extensions"]["code"] == code
    answer = await shop.gql(RETRY, {"id": "TWFya2V0cGxhY2VUcmFkZTox"}, key=shop.keys.taobao)
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    answer = await shop.gql(CONNECTIONS, key=shop.keys.taobao)
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    shown = (await shop.gql(CONNECTIONS, key=shop.keys.admin))["data"]["marketplaceConnections"]
    assert [(c["channel"], c["appKey"], c["enabled"]) for c in shown] == [("taobao", "23456789", True)]
    assert "secret" not in str(shown).lower()


async def test_no_code_reaches_a_log_line(shop: Market, caplog) -> None:
    caplog.set_level("DEBUG")
    tid = await shop.sell("QB-10")
    await shop.pull()
    await shop.settle()
    codes = shop.sim.shop.deliveries[tid].codes
    assert codes and not any(code.secret in record.getMessage() for record in caplog.records for code in codes)


async def test_pushes_and_a_pull_of_one_trade_at_once_make_one_order(shop: Market) -> None:
    tid = await shop.sell("QB-10")
    trade = await shop.sim_trade(tid)
    answers = await asyncio.gather(*(shop.push(shop.push_params(wire.TRADE_TOPIC, trade)) for _ in range(6)),
                                   shop.pull())
    assert all(answer.status_code == 200 for answer in answers[:-1])
    await shop.pull()
    await shop.settle()
    async with shop.db.fresh_sessions() as session:
        orders = await session.scalar(select(func.count()).select_from(Order).where(Order.idempotency_key == tid))
        records = list(await session.scalars(select(MarketplaceOrder).where(MarketplaceOrder.tid == tid)))
    assert orders == 1 and len(records) == 1 and records[0].seen >= 8
    assert (await shop.order(tid))["status"] == "DELIVERED"
    assert [d["requests"] for d in await shop.deliveries(tid)] == [1]


async def test_an_import_that_stopped_midway_is_taken_up_by_the_next_pull(shop: Market) -> None:
    tid = await shop.sell("QB-10")
    # Given a process that died after claiming the trade, before placing its order
    async with shop.db.sessions() as session, session.begin():
        channel_id = await session.scalar(select(MarketplaceConnection.channel_id))
        session.add(MarketplaceOrder(channel_id=channel_id, tid=tid, status="RECEIVED", source="PULL", seen=1, lines=[],
                                     paid_fen=990, report_attempts=0,
                                     created_at=datetime.now(UTC) - timedelta(minutes=5),
                                     updated_at=datetime.now(UTC) - timedelta(minutes=5)))
    # When the trade is pulled again
    await shop.pull()
    await shop.settle()
    # Then the import is taken up and finished: one order, delivered and reported
    assert (await shop.trade(tid))["status"] == "IMPORTED"
    assert (await shop.order(tid))["status"] == "DELIVERED"
    assert len(await shop.deliveries(tid)) == 1


async def test_a_trade_we_cannot_stock_is_a_failed_import_that_holds_nothing(shop: Market) -> None:
    before = await _available(shop, "NE-50")
    tid = await shop.sell("NE-50", 999)
    await shop.pull()
    trade = await shop.trade(tid)
    assert trade["status"] == "FAILED" and trade["orderId"] is None
    assert trade["reason"].split(":")[0] in ("OUT_OF_STOCK", "INVALID_INPUT", "QUOTA_EXCEEDED")
    assert await _available(shop, "NE-50") == before


async def test_a_bundle_of_codes_and_a_top_up_reports_both_in_one_delivery(shop: Market) -> None:
    # Given a buyer who paid for the gamer pack (a Q币 card and a video membership top-up)
    tid = await shop.sell("PACK-GAMER", account="13800138000", price="52.00")
    # When it is imported, fulfilled and reported
    await shop.pull()
    await shop.settle()
    assert (await shop.order(tid))["status"] == "DELIVERED"
    # Then the marketplace has one delivery carrying the code and the top-up's result, asked once
    delivered = await shop.deliveries(tid)
    assert [(len(d["codes"]), len(d["topups"]), d["requests"]) for d in delivered] == [(1, 1, 1)]
    assert (await shop.trade(tid))["deliveryReport"] == {"status": "REPORTED", "attempts": 1, "error": None}
