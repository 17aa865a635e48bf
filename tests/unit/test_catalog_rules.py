"""The product center's pure rules, read as tables: codes, amounts, bundles, accounts, zones."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.catalog import SkuKind
from domain.catalog_input import Checker, CodeKind, fold_code
from domain.catalog_skus import Component, ComponentFacts, check_components, contains_itself
from domain.channel_rules import commission_bp, rate_of
from domain.recharge_accounts import AccountFormat, accepts, parse_formats, store_formats
from domain.settlement import Cycle, last_complete_period


@pytest.mark.parametrize(("text", "kind", "folded"), [
    ("Tencent", CodeKind.CODE, "tencent"),
    (" b2b_demo\t", CodeKind.CODE, "b2b_demo"),
    ("qb-10", CodeKind.SKU, "QB-10"),
    ("IQY.MONTH_1", CodeKind.SKU, "IQY.MONTH_1"),
    ("QQ-Coins", CodeKind.SLUG, "qq-coins"),
    ("qq_coins", CodeKind.SLUG, None),  # slugs take hyphens only
    ("ｑｂ-10", CodeKind.SKU, None),
    ("QВ-10", CodeKind.SKU, None),  # a Cyrillic В
    ("QB--10", CodeKind.SKU, None),
    ("QB-10-", CodeKind.SKU, None),
    ("Q B", CodeKind.SKU, None),
    ("a" * 121, CodeKind.SLUG, None),
])
def test_a_code_has_one_spelling(text: str, kind: CodeKind, folded: str | None) -> None:
    assert fold_code(text, kind) == folded


@pytest.mark.parametrize(("amount", "problem"), [
    ("9.90", None), ("0.01", None), (7, None), ("-0.01", "NEGATIVE_AMOUNT"), ("0", "PRICE_NOT_POSITIVE"),
    ("1e3", "INVALID_AMOUNT"), ("9.901", "INVALID_AMOUNT"), (9.9, "INVALID_AMOUNT"), (True, "INVALID_AMOUNT"),
])
def test_a_price_is_a_positive_decimal_string_with_the_currencys_decimals(amount: object, problem: str | None) -> None:
    check = Checker()
    check.money("basePrice", amount, "CNY", positive=True)
    assert [p.code for p in check.problems] == ([problem] if problem else [])


def test_a_bundle_holding_itself_is_found_however_deep() -> None:
    contents = {"B": ["C"], "C": ["A"], "D": []}
    assert contains_itself("A", ["A"], {})
    assert contains_itself("A", ["B"], contents)
    assert not contains_itself("A", ["D"], contents)


def test_components_are_checked_one_by_one() -> None:
    facts = {
        "CARD": ComponentFacts(SkuKind.CARD_CODE, "CNY", archived=False),
        "OLD": ComponentFacts(SkuKind.CARD_CODE, "CNY", archived=True),
        "USD": ComponentFacts(SkuKind.CARD_CODE, "USD", archived=False),
        "PACK": ComponentFacts(SkuKind.BUNDLE, "CNY", archived=False),
    }
    check = Checker()
    parts = [Component("CARD", 0), Component("OLD", 1), Component("USD", 1), Component("PACK", 1), Component("NONE", 1),
             Component("CARD", 1)]
    check_components(check, "NEW", SkuKind.BUNDLE, "CNY", parts, {**facts, "NONE": None}, {"PACK": ["CARD"]})
    assert [(p.field, p.code) for p in check.problems] == [
        ("components.0.quantity", "OUT_OF_RANGE"),
        ("components.1.skuId", "ARCHIVED"),
        ("components.2.skuId", "CURRENCY_MISMATCH"),
        ("components.3.skuId", "NESTED_BUNDLE"),
        ("components.4.skuId", "NOT_FOUND"),
        ("components.5.skuId", "DUPLICATE"),
    ]


@pytest.mark.parametrize(("formats", "account", "ok"), [
    ((), "anything at all", True),
    ((AccountFormat.PHONE,), "13800138000", True),
    ((AccountFormat.PHONE,), "12800138000", False),
    ((AccountFormat.QQ, AccountFormat.PHONE), "10001", True),
    ((AccountFormat.QQ,), "01234", False),
    ((AccountFormat.EMAIL,), "gamer@example.com", True),
    ((AccountFormat.NUMERIC,), "123", False),
])
def test_a_top_up_takes_the_accounts_of_its_formats(formats: tuple[AccountFormat, ...], account: str, ok: bool) -> None:
    assert accepts(formats, account) is ok


def test_formats_are_stored_in_one_order() -> None:
    stored = store_formats([AccountFormat.PHONE, AccountFormat.QQ, AccountFormat.PHONE])
    assert (stored, parse_formats(stored)) == ("PHONE,QQ", (AccountFormat.PHONE, AccountFormat.QQ))


@pytest.mark.parametrize(("rate", "points", "problem"), [
    ("0.05", 500, None), ("0.006", 60, None), ("1", 10_000, None), ("0.00005", 0, "INVALID_RATE"), ("1.5", 0, "INVALID_RATE"),
    ("-0.01", 0, "INVALID_RATE"),
])
def test_a_commission_is_whole_basis_points(rate: str, points: int, problem: str | None) -> None:
    check = Checker()
    assert commission_bp(check, rate) == points
    assert [p.code for p in check.problems] == ([problem] if problem else [])
    if problem is None:
        assert str(rate_of(points)) == rate


def test_a_channel_settles_the_days_of_its_own_time_zone() -> None:
    now = datetime(2026, 11, 11, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, 22:00 the day before in New York
    shanghai = last_complete_period(Cycle.DAILY, now)
    new_york = last_complete_period(Cycle.DAILY, now, ZoneInfo("America/New_York"))
    assert [moment.astimezone(UTC).isoformat() for moment in shanghai] == ["2026-11-09T16:00:00+00:00", "2026-11-10T16:00:00+00:00"]
    assert [moment.astimezone(UTC).isoformat() for moment in new_york] == ["2026-11-09T05:00:00+00:00", "2026-11-10T05:00:00+00:00"]
