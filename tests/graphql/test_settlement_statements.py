"""Settlement statements over the API: generate, regenerate, confirm, pay, list and read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.settlement import SETTLEMENT_ZONE, Cycle, last_complete_period
from models import ChannelKind
from tests.e2e.shop import Shop, open_shop
from tests.settlement_support import Partner, delivered_order, new_partner, paid_order, refund, supplier_of

GENERATE = """
mutation Generate($input: GenerateSettlementInput!) {
  generateSettlementStatement(input: $input) {
    statement { id party code periodStart periodEnd status
      totals { gross { amount currency } supplierCost { amount } commission { amount } margin { amount }
               refunds { amount } prepaid { amount } net { amount } orderCount } }
    userErrors { field message code }
  }
}
"""
LINES = """
query Lines($id: ID!, $first: Int, $after: String) {
  node(id: $id) { ... on SettlementStatement { status lines(first: $first, after: $after) {
    edges { node { orderNumber externalOrderNumber sku quantity gross { amount } cost { amount }
                   commission { amount } margin { amount } refunded { amount } } }
    pageInfo { hasNextPage endCursor } } } }
}
"""
CONFIRM = """
mutation Confirm($id: ID!) { confirmSettlementStatement(id: $id) { statement { status totals { gross { amount } refunds { amount } net { amount } } } userErrors { field message code } } }
"""
PAID = """
mutation Paid($id: ID!) { markSettlementStatementPaid(id: $id) { statement { status } userErrors { field message code } } }
"""
LIST = """
query List($channel: String, $supplier: String, $status: StatementStatus) {
  settlementStatements(channel: $channel, supplier: $supplier, status: $status) { edges { node { code status periodStart } } }
}
"""

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)
MAY = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("statements"), expiry_interval_seconds=3600) as opened:
        opened.extra["ten"] = await opened.shelf.counter(100_000, price_fen=1000)  # cost 9.00
        opened.extra["card"] = await opened.shelf.counter(100_000, price_fen=3330)  # cost 29.97
        opened.extra["supplier"] = await supplier_of(opened.db, "结算供应商", opened.extra["ten"], opened.extra["card"])
        yield opened


@pytest.fixture
async def partner(shop: Shop) -> Partner:
    return await new_partner(shop.db, commission_bp=600)


def period(party: str, code: str, start: datetime = MARCH, end: datetime = APRIL) -> dict[str, Any]:
    return {"input": {"party": party, "code": code, "periodStart": start.isoformat(), "periodEnd": end.isoformat()}}


async def generate(shop: Shop, variables: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    return await shop.gql(GENERATE, variables, key=key or shop.keys.admin)


def money(amount: str) -> dict[str, str]:
    return {"amount": amount}


async def test_a_channel_statement_totals_its_delivered_orders(shop: Shop, partner: Partner) -> None:
    ten, card = shop.extra["ten"], shop.extra["card"]
    first = await delivered_order(shop.db, partner.channel, (ten, 2), (card, 1), at=MARCH + timedelta(days=3), external="TB-1001")
    second = await delivered_order(shop.db, partner.channel, (card, 3), at=MARCH + timedelta(days=20), external="TB-1002")
    await delivered_order(shop.db, partner.channel, (ten, 1), at=APRIL + timedelta(hours=1))  # next month
    await paid_order(shop.db, partner.channel, (ten, 5), at=MARCH + timedelta(days=4))  # paid, never delivered

    answer = await generate(shop, period("CHANNEL", partner.channel))

    statement = answer["data"]["generateSettlementStatement"]["statement"]
    # gross 20.00 + 33.30 + 99.90 = 153.20; cost 18.00 + 29.97 + 89.91 = 137.88;
    # commission 6% per line, rounded once: 1.20 + 2.00 + 5.99 = 9.19; margin 6.13.
    assert answer["data"]["generateSettlementStatement"]["userErrors"] == []
    assert statement["totals"] == {
        "gross": {"amount": "153.20", "currency": "CNY"}, "supplierCost": money("137.88"), "commission": money("9.19"),
        "margin": money("6.13"), "refunds": money("0.00"), "prepaid": money("0.00"), "net": money("144.01"),
        "orderCount": 2,
    }
    assert (statement["party"], statement["code"], statement["status"]) == ("CHANNEL", partner.channel, "DRAFT")
    lines = await shop.gql(LINES, {"id": statement["id"]}, key=shop.keys.admin)
    assert lines["data"]["node"]["lines"]["edges"] == [
        {"node": {"orderNumber": first.number, "externalOrderNumber": "TB-1001", "sku": ten.code, "quantity": 2, "gross": money("20.00"),
                  "cost": money("18.00"), "commission": money("1.20"), "margin": money("0.80"), "refunded": money("0.00")}},
        {"node": {"orderNumber": first.number, "externalOrderNumber": "TB-1001", "sku": card.code, "quantity": 1, "gross": money("33.30"),
                  "cost": money("29.97"), "commission": money("2.00"), "margin": money("1.33"), "refunded": money("0.00")}},
        {"node": {"orderNumber": second.number, "externalOrderNumber": "TB-1002", "sku": card.code, "quantity": 3, "gross": money("99.90"),
                  "cost": money("89.91"), "commission": money("5.99"), "margin": money("4.00"), "refunded": money("0.00")}},
    ]


TOP_UP = """
mutation TopUp($channel: String!, $amount: Decimal!, $reference: String!) {
  topUpPrepaidBalance(channel: $channel, amount: $amount, reference: $reference) { userErrors { code } }
}
"""
CONFIRMED_TOTALS = """
mutation Confirm($id: ID!) {
  confirmSettlementStatement(id: $id) { statement { status totals { gross { amount } refunds { amount } prepaid { amount } net { amount } } } }
}
"""


async def test_what_a_b2b_channel_paid_from_its_balance_is_not_billed_again(shop: Shop) -> None:
    # Given a B2B channel (commission 6%) that paid two March orders from its prepaid balance
    # (one of them refunded in March, back to the balance) and one by a payment of its own
    ten, card = shop.extra["ten"], shop.extra["card"]
    b2b = await new_partner(shop.db, kind=ChannelKind.B2B, commission_bp=600)
    topped = await shop.gql(TOP_UP, {"channel": b2b.channel, "amount": "100.00", "reference": "bank-0301"}, key=shop.keys.admin)
    assert topped["data"]["topUpPrepaidBalance"]["userErrors"] == []
    await delivered_order(shop.db, b2b.channel, (ten, 2), at=MARCH + timedelta(days=2), from_balance=True)
    returned = await delivered_order(shop.db, b2b.channel, (card, 1), at=MARCH + timedelta(days=3), from_balance=True)
    await refund(shop.db, returned, at=MARCH + timedelta(days=4))
    await delivered_order(shop.db, b2b.channel, (ten, 1), at=MARCH + timedelta(days=5))
    # and in April only an order paid from the balance
    await delivered_order(shop.db, b2b.channel, (ten, 1), at=APRIL + timedelta(days=1), from_balance=True)

    # When its statements are generated
    march = await generate(shop, period("CHANNEL", b2b.channel))
    april = await generate(shop, period("CHANNEL", b2b.channel, APRIL, MAY))

    # Then March shows the 20.00 paid from the balance (the refunded 33.30 went back to it) and
    # nets to what is still owed: the order paid otherwise (10.00 − 0.60 commission) less the
    # commission owed to the channel on its prepaid order (1.20): 8.20.
    assert march["data"]["generateSettlementStatement"]["statement"]["totals"] == {
        "gross": {"amount": "63.30", "currency": "CNY"}, "supplierCost": money("56.97"), "commission": money("3.80"),
        "margin": money("2.53"), "refunds": money("33.30"), "prepaid": money("20.00"), "net": money("8.20"),
        "orderCount": 3,
    }
    # April was paid in full in advance: the channel owes nothing, it is owed its commission.
    assert april["data"]["generateSettlementStatement"]["statement"]["totals"] == {
        "gross": {"amount": "10.00", "currency": "CNY"}, "supplierCost": money("9.00"), "commission": money("0.60"),
        "margin": money("0.40"), "refunds": money("0.00"), "prepaid": money("10.00"), "net": money("-0.60"),
        "orderCount": 1,
    }
    # And a confirmed statement keeps those figures.
    statement_id = march["data"]["generateSettlementStatement"]["statement"]["id"]
    confirmed = await shop.gql(CONFIRMED_TOTALS, {"id": statement_id}, key=shop.keys.admin)
    assert confirmed["data"]["confirmSettlementStatement"]["statement"] == {"status": "CONFIRMED", "totals": {
        "gross": money("63.30"), "refunds": money("33.30"), "prepaid": money("20.00"), "net": money("8.20")}}


async def test_lines_page_by_cursor(shop: Shop, partner: Partner) -> None:
    for day in range(3):
        await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 1), at=MARCH + timedelta(days=day), external=f"P-{day}")
    statement_id = (await generate(shop, period("CHANNEL", partner.channel)))["data"]["generateSettlementStatement"]["statement"]["id"]

    first = (await shop.gql(LINES, {"id": statement_id, "first": 2}, key=shop.keys.admin))["data"]["node"]["lines"]
    rest = (await shop.gql(LINES, {"id": statement_id, "first": 2, "after": first["pageInfo"]["endCursor"]}, key=shop.keys.admin))["data"]["node"]["lines"]

    numbers = [e["node"]["externalOrderNumber"] for e in first["edges"] + rest["edges"]]
    assert (numbers, first["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasNextPage"]) == (["P-0", "P-1", "P-2"], True, False)


async def test_generating_a_draft_again_recomputes_the_same_statement(shop: Shop, partner: Partner) -> None:
    await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 1), at=MARCH + timedelta(days=1))
    before = (await generate(shop, period("CHANNEL", partner.channel)))["data"]["generateSettlementStatement"]["statement"]
    await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 4), at=MARCH + timedelta(days=2))

    again = (await generate(shop, period("CHANNEL", partner.channel)))["data"]["generateSettlementStatement"]["statement"]

    assert again["id"] == before["id"]
    assert (before["totals"]["gross"]["amount"], again["totals"]["gross"]["amount"]) == ("10.00", "50.00")
    listed = await shop.gql(LIST, {"channel": partner.channel}, key=shop.keys.admin)
    assert listed["data"]["settlementStatements"]["edges"] == [{"node": {"code": partner.channel, "status": "DRAFT", "periodStart": "2026-03-01T08:00:00+08:00"}}]


async def test_a_confirmed_statement_is_frozen_and_a_late_refund_lands_in_the_next(shop: Shop, partner: Partner) -> None:
    order = await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 3), at=MARCH + timedelta(days=5))
    march = (await generate(shop, period("CHANNEL", partner.channel)))["data"]["generateSettlementStatement"]["statement"]

    confirmed = await shop.gql(CONFIRM, {"id": march["id"]}, key=shop.keys.admin)
    await refund(shop.db, order, at=APRIL + timedelta(days=2))
    regenerated = (await generate(shop, period("CHANNEL", partner.channel)))["data"]["generateSettlementStatement"]["statement"]
    april = (await generate(shop, period("CHANNEL", partner.channel, APRIL, MAY)))["data"]["generateSettlementStatement"]["statement"]

    assert confirmed["data"]["confirmSettlementStatement"] == {
        "statement": {"status": "CONFIRMED", "totals": {"gross": money("30.00"), "refunds": money("0.00"), "net": money("28.20")}},
        "userErrors": [],
    }
    assert (regenerated["id"], regenerated["status"], regenerated["totals"]) == (march["id"], "CONFIRMED", march["totals"])
    assert april["totals"] == {
        "gross": {"amount": "0.00", "currency": "CNY"}, "supplierCost": money("0.00"), "commission": money("0.00"),
        "margin": money("0.00"), "refunds": money("30.00"), "prepaid": money("0.00"), "net": money("-28.20"),
        "orderCount": 0,
    }


async def test_a_statement_moves_draft_confirmed_paid_and_no_other_way(shop: Shop, partner: Partner) -> None:
    statement_id = (await generate(shop, period("CHANNEL", partner.channel)))["data"]["generateSettlementStatement"]["statement"]["id"]

    early = await shop.gql(PAID, {"id": statement_id}, key=shop.keys.admin)
    await shop.gql(CONFIRM, {"id": statement_id}, key=shop.keys.admin)
    twice = await shop.gql(CONFIRM, {"id": statement_id}, key=shop.keys.admin)
    paid = await shop.gql(PAID, {"id": statement_id}, key=shop.keys.admin)

    assert early["data"]["markSettlementStatementPaid"] == {"statement": None, "userErrors": [
        {"field": "id", "message": "a DRAFT statement cannot become PAID", "code": "INVALID_STATE"}]}
    assert twice["data"]["confirmSettlementStatement"]["userErrors"] == [
        {"field": "id", "message": "a CONFIRMED statement cannot become CONFIRMED", "code": "INVALID_STATE"}]
    assert paid["data"]["markSettlementStatementPaid"] == {"statement": {"status": "PAID"}, "userErrors": []}
    listed = await shop.gql(LIST, {"channel": partner.channel, "status": "PAID"}, key=shop.keys.admin)
    assert [e["node"]["status"] for e in listed["data"]["settlementStatements"]["edges"]] == ["PAID"]


async def test_a_period_not_yet_ended_cannot_be_confirmed(shop: Shop, partner: Partner) -> None:
    now = datetime.now(UTC)
    statement_id = (await generate(shop, period("CHANNEL", partner.channel, now - timedelta(days=1), now + timedelta(days=1))))[
        "data"]["generateSettlementStatement"]["statement"]["id"]

    answer = await shop.gql(CONFIRM, {"id": statement_id}, key=shop.keys.admin)

    assert answer["data"]["confirmSettlementStatement"] == {"statement": None, "userErrors": [
        {"field": "id", "message": "a statement is confirmed after its period ends", "code": "PERIOD_OPEN"}]}


async def test_without_a_period_the_last_complete_cycle_is_settled(shop: Shop, partner: Partner) -> None:
    answer = await generate(shop, {"input": {"party": "CHANNEL", "code": partner.channel}})

    statement = answer["data"]["generateSettlementStatement"]["statement"]
    start, end = (datetime.fromisoformat(statement[f]).astimezone(SETTLEMENT_ZONE) for f in ("periodStart", "periodEnd"))
    # Monthly: from midnight on the 1st of last month to midnight on the 1st of this one, Beijing time.
    this_month = datetime.now(SETTLEMENT_ZONE).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert (start.day, start.hour, end, (end - start).days in (28, 29, 30, 31)) == (1, 0, this_month, True)


@pytest.mark.parametrize(
    ("variables", "error"),
    [
        pytest.param(period("CHANNEL", "no-such-channel"), {"field": "code", "message": "no channel 'no-such-channel'", "code": "UNKNOWN_PARTY"}, id="unknown"),
        pytest.param(period("CHANNEL", "taobao", APRIL, MARCH), {"field": "periodEnd", "message": "the period ends after it starts", "code": "INVALID_INPUT"}, id="backwards"),
        pytest.param({"input": {"party": "SUPPLIER", "code": "x", "periodStart": MARCH.isoformat()}}, {"field": "code", "message": "no supplier 'x'", "code": "UNKNOWN_PARTY"}, id="unknown supplier"),
        pytest.param({"input": {"party": "CHANNEL", "code": "taobao", "periodStart": MARCH.isoformat()}}, {"field": "periodEnd", "message": "give both ends of the period, or neither", "code": "INVALID_INPUT"}, id="half a period"),
    ],
)
async def test_a_statement_that_cannot_be_generated_is_a_user_error(shop: Shop, variables: dict[str, Any], error: dict[str, str]) -> None:
    assert await generate(shop, variables) == {"data": {"generateSettlementStatement": {"statement": None, "userErrors": [error]}}}


async def test_a_supplier_statement_nets_its_cost_less_refunded_cost(shop: Shop, partner: Partner) -> None:
    supplier = shop.extra["supplier"]
    kept = await delivered_order(shop.db, partner.channel, (shop.extra["ten"], 2), at=datetime(2025, 6, 3, tzinfo=UTC))
    returned = await delivered_order(shop.db, partner.channel, (shop.extra["card"], 1), at=datetime(2025, 6, 4, tzinfo=UTC))
    await refund(shop.db, returned, at=datetime(2025, 6, 5, tzinfo=UTC))

    answer = await generate(shop, period("SUPPLIER", supplier, datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)))

    totals = answer["data"]["generateSettlementStatement"]["statement"]["totals"]
    assert totals == {
        "gross": {"amount": "53.30", "currency": "CNY"}, "supplierCost": money("47.97"), "commission": money("3.20"),
        "margin": money("2.13"), "refunds": money("33.30"), "prepaid": money("0.00"), "net": money("18.00"),
        "orderCount": 2,
    }
    assert kept.number != returned.number
    listed = await shop.gql(LIST, {"supplier": supplier}, key=shop.keys.admin)
    assert [e["node"]["code"] for e in listed["data"]["settlementStatements"]["edges"]] == [supplier]


@pytest.mark.parametrize(("caller", "code"), [("partner", "FORBIDDEN"), ("web", "FORBIDDEN"), (None, "UNAUTHENTICATED")])
async def test_only_operators_generate_statements(shop: Shop, partner: Partner, caller: str | None, code: str) -> None:
    key = {"partner": partner.key, "web": shop.keys.web, None: None}[caller]

    answer = await shop.gql(GENERATE, period("CHANNEL", partner.channel), key=key)

    assert (answer["data"], [e["extensions"]["code"] for e in answer["errors"]]) == (None, [code])


async def test_a_statement_is_a_node(shop: Shop, partner: Partner) -> None:
    statement = (await generate(shop, period("CHANNEL", partner.channel)))["data"]["generateSettlementStatement"]["statement"]

    answer = await shop.gql("query N($id: ID!) { node(id: $id) { id ... on SettlementStatement { code } } }", {"id": statement["id"]}, key=partner.key)

    assert answer == {"data": {"node": {"id": statement["id"], "code": partner.channel}}}


ZONED = """
mutation Generate($input: GenerateSettlementInput!) {
  generateSettlementStatement(input: $input) { statement { id periodStart periodEnd timeZone } userErrors { code } }
}
"""


async def file_name(shop: Shop, statement_id: str) -> str:
    response = await shop.client.http.get(f"/settlement/{statement_id}.csv", headers={"authorization": f"Bearer {shop.keys.admin}"})
    assert response.status_code == 200
    return response.headers["content-disposition"]


async def test_a_beijing_month_reads_as_beijing_dates_in_the_statement_and_its_file(shop: Shop, partner: Partner) -> None:
    october = {"periodStart": "2026-10-01T00:00:00+08:00", "periodEnd": "2026-11-01T00:00:00+08:00"}

    answer = await shop.gql(ZONED, {"input": {"party": "CHANNEL", "code": partner.channel, **october}}, key=shop.keys.admin)

    statement = answer["data"]["generateSettlementStatement"]["statement"]
    assert (statement["periodStart"], statement["periodEnd"], statement["timeZone"]) == (
        "2026-10-01T00:00:00+08:00", "2026-11-01T00:00:00+08:00", "Asia/Shanghai")
    assert await file_name(shop, statement["id"]) == f'attachment; filename="settlement-{partner.channel}-20261001-20261101-draft.csv"'


async def test_a_channel_settles_whole_months_of_its_own_time_zone(shop: Shop) -> None:
    los_angeles = await new_partner(shop.db, time_zone="America/Los_Angeles")

    answer = await shop.gql(ZONED, {"input": {"party": "CHANNEL", "code": los_angeles.channel}}, key=shop.keys.admin)

    statement = answer["data"]["generateSettlementStatement"]["statement"]
    start, end = last_complete_period(Cycle.MONTHLY, datetime.now(UTC), ZoneInfo("America/Los_Angeles"))
    assert (start.day, start.hour, end.day, end.hour) == (1, 0, 1, 0)
    assert (statement["periodStart"], statement["periodEnd"], statement["timeZone"]) == (
        start.isoformat(), end.isoformat(), "America/Los_Angeles")
    assert statement["periodStart"].endswith(("-07:00", "-08:00"))
    assert await file_name(shop, statement["id"]) == (
        f'attachment; filename="settlement-{los_angeles.channel}-{start:%Y%m%d}-{end:%Y%m%d}-draft.csv"')


async def test_a_supplier_settles_beijing_months(shop: Shop) -> None:
    answer = await shop.gql(ZONED, {"input": {"party": "SUPPLIER", "code": shop.extra["supplier"]}}, key=shop.keys.admin)

    statement = answer["data"]["generateSettlementStatement"]["statement"]
    assert statement["timeZone"] == "Asia/Shanghai"
    assert statement["periodStart"].endswith("-01T00:00:00+08:00")


PAGE = """
query Page($channel: String, $after: String) {
  settlementStatements(channel: $channel, first: 2, after: $after) {
    edges { node { periodStart } } pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_statements_are_listed_newest_first_a_page_at_a_time(shop: Shop, partner: Partner) -> None:
    months = [datetime(2025, m, 1, tzinfo=UTC) for m in (1, 2, 3, 4)]
    for start, end in zip(months, months[1:]):
        await generate(shop, period("CHANNEL", partner.channel, start, end))

    first = (await shop.gql(PAGE, {"channel": partner.channel}, key=partner.key))["data"]["settlementStatements"]
    rest = (await shop.gql(PAGE, {"channel": partner.channel, "after": first["pageInfo"]["endCursor"]}, key=partner.key))["data"]["settlementStatements"]

    starts = [e["node"]["periodStart"][:7] for e in first["edges"] + rest["edges"]]
    assert (starts, first["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasNextPage"]) == (["2025-03", "2025-02", "2025-01"], True, False)
