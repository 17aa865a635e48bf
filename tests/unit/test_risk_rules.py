"""The risk engine, rule kind by rule kind: the facts of an attempt in, the verdict out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.money import Money
from domain.risk import (
    CounterHit,
    Decision,
    Facts,
    Reason,
    Rule,
    RuleKind,
    Verdict,
    counters_needed,
    evaluate,
    needs_account_age,
)
from domain.risk_parameters import RuleParameterError, check_parameters

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def facts(**given: Any) -> Facts:
    values: dict[str, Any] = {"channel": "web", "at": NOW, "amount": Money.of("100.00"), "quantities": {1: 1},
                              "client_ip": "203.0.113.7", "phone": "13800138000"}
    values.update(given)
    return Facts(**values)


def rule(kind: RuleKind, parameters: dict[str, Any], action: Decision = Decision.REJECT, *, channel: str | None = None,
         name: str = "rule", enabled: bool = True) -> Rule:
    return Rule(1, name, kind, check_parameters(kind, parameters), action, 100 if action is Decision.REJECT else 50,
                channel, enabled)


def verdict_of(one: Rule, attempt: Facts, counts: dict[str, int] | None = None) -> tuple[str | None, str | None] | None:
    """(observed, threshold) when the rule fires on the attempt, else None."""
    found = evaluate([one], attempt, counts or {})
    return (found.reasons[0].observed, found.reasons[0].threshold) if found.reasons else None


IP_5_A_MINUTE = {"dimension": "IP", "limit": 5, "windowSeconds": 60}
VIRTUAL = {"prefixes": ["162", "165", "167", "170", "171"]}


@pytest.mark.parametrize(
    ("kind", "parameters", "attempt", "counts", "expected"),
    [
        # velocity: the count includes this attempt; more than the limit fires
        (RuleKind.VELOCITY, IP_5_A_MINUTE, {}, {"v:IP:60:203.0.113.7": 5}, None),
        (RuleKind.VELOCITY, IP_5_A_MINUTE, {}, {"v:IP:60:203.0.113.7": 6}, ("6 orders by IP in 60s", "5 in 60s")),
        (RuleKind.VELOCITY, IP_5_A_MINUTE, {"client_ip": None}, {}, None),
        (RuleKind.VELOCITY, {"dimension": "DEVICE", "limit": 1, "windowSeconds": 3600}, {"device_id": "d-1"},
         {"v:DEVICE:3600:d-1": 2}, ("2 orders by DEVICE in 3600s", "1 in 3600s")),
        (RuleKind.VELOCITY, {"dimension": "PHONE", "limit": 2, "windowSeconds": 60}, {},
         {"v:PHONE:60:13800138000": 3}, ("3 orders by PHONE in 60s", "2 in 60s")),
        (RuleKind.VELOCITY, {"dimension": "ACCOUNT", "limit": 2, "windowSeconds": 60}, {"account": "qq:1"},
         {"v:ACCOUNT:60:qq:1": 3}, ("3 orders by ACCOUNT in 60s", "2 in 60s")),
        # virtual-operator segments, with or without a country prefix
        (RuleKind.PHONE_SEGMENT, VIRTUAL, {"phone": "17012345678"}, {}, ("phone segment 170", "virtual-operator segments 162,165,167,170,171")),
        (RuleKind.PHONE_SEGMENT, VIRTUAL, {"phone": "+8616512345678"}, {}, ("phone segment 165", "virtual-operator segments 162,165,167,170,171")),
        (RuleKind.PHONE_SEGMENT, VIRTUAL, {"phone": "13800138000"}, {}, None),
        (RuleKind.PHONE_SEGMENT, VIRTUAL, {"phone": None, "email": "a@b.cn"}, {}, None),
        # blacklists: networks for addresses, exact values otherwise
        (RuleKind.BLACKLIST, {"dimension": "IP", "values": ["203.0.113.0/24"]}, {}, {}, ("IP 203.0.113.7", "IP blacklist")),
        (RuleKind.BLACKLIST, {"dimension": "IP", "values": ["198.51.100.1"]}, {}, {}, None),
        (RuleKind.BLACKLIST, {"dimension": "PHONE", "values": ["13800138000"]}, {"phone": "+8613800138000"}, {},
         ("PHONE 13800138000", "PHONE blacklist")),
        (RuleKind.BLACKLIST, {"dimension": "PHONE", "values": ["+86 138-0013-8000"]}, {"phone": "0086 13800138000"}, {},
         ("PHONE 13800138000", "PHONE blacklist")),
        (RuleKind.BLACKLIST, {"dimension": "DEVICE", "values": ["bad"]}, {"device_id": "bad"}, {}, ("DEVICE bad", "DEVICE blacklist")),
        (RuleKind.BLACKLIST, {"dimension": "DEVICE", "values": ["Bad-1"]}, {"device_id": " BAD-1"}, {}, ("DEVICE bad-1", "DEVICE blacklist")),
        (RuleKind.BLACKLIST, {"dimension": "ACCOUNT", "values": ["qq:9"]}, {"account": "qq:1"}, {}, None),
        (RuleKind.BLACKLIST, {"dimension": "EMAIL", "values": ["Bot@Spam.cn"]}, {"email": "bot@spam.cn"}, {},
         ("EMAIL bot@spam.cn", "EMAIL blacklist")),
        # amount and quantity thresholds
        (RuleKind.AMOUNT_LIMIT, {"max": "100.00"}, {}, {}, None),
        (RuleKind.AMOUNT_LIMIT, {"max": "99.99"}, {}, {}, ("100.00 CNY", "99.99 CNY")),
        (RuleKind.QUANTITY_LIMIT, {"max": 10}, {"quantities": {1: 6, 2: 4}}, {}, None),
        (RuleKind.QUANTITY_LIMIT, {"max": 10}, {"quantities": {1: 6, 2: 5}}, {}, ("11 units", "10 units")),
        # one device, many new accounts (first-order abuse); an account seen before is not new
        (RuleKind.ACCOUNT_SPREAD, {"by": "DEVICE", "maxAccounts": 3, "windowSeconds": 86400}, {"device_id": "d", "account": "qq:4"},
         {"a:DEVICE:86400:d": 4}, ("4 new accounts by DEVICE in 86400s", "3 in 86400s")),
        (RuleKind.ACCOUNT_SPREAD, {"by": "DEVICE", "maxAccounts": 3, "windowSeconds": 86400}, {"device_id": "d", "account": "qq:4"},
         {"a:DEVICE:86400:d": 3}, None),
        (RuleKind.ACCOUNT_SPREAD, {"by": "DEVICE", "maxAccounts": 3, "windowSeconds": 86400},
         {"device_id": "d", "account": "qq:4", "account_age": timedelta(days=30)}, {"a:DEVICE:86400:d": 4}, None),
        # coupon abuse: only attempts with a coupon count
        (RuleKind.ACCOUNT_SPREAD, {"by": "PHONE", "maxAccounts": 1, "windowSeconds": 600, "couponOnly": True},
         {"account": "qq:2"}, {"a:PHONE:600:13800138000": 2}, None),
        (RuleKind.ACCOUNT_SPREAD, {"by": "PHONE", "maxAccounts": 1, "windowSeconds": 600, "couponOnly": True},
         {"account": "qq:2", "coupon": "NEW10"}, {"a:PHONE:600:13800138000": 2}, ("2 new accounts by PHONE in 600s", "1 in 600s")),
    ],
)
def test_each_rule_kind_fires_on_what_it_watches(
    kind: RuleKind, parameters: dict[str, Any], attempt: dict[str, Any], counts: dict[str, int],
    expected: tuple[str, str] | None,
) -> None:
    assert verdict_of(rule(kind, parameters), facts(**attempt), counts) == expected


def test_no_matching_rule_passes_with_score_zero() -> None:
    assert evaluate([rule(RuleKind.PHONE_SEGMENT, VIRTUAL)], facts(), {}) == Verdict(Decision.PASS, 0)


def test_the_most_severe_action_wins_and_scores_add_up_to_at_most_100() -> None:
    review = Rule(1, "virtual", RuleKind.PHONE_SEGMENT, VIRTUAL, Decision.REVIEW, 60)
    reject = Rule(2, "big", RuleKind.AMOUNT_LIMIT, {"max": "50.00"}, Decision.REJECT, 70)

    found = evaluate([reject, review], facts(phone="17000000000"), {})

    assert found == Verdict(Decision.REJECT, 100, (
        Reason("virtual", "phone segment 170", "virtual-operator segments 162,165,167,170,171", Decision.REVIEW, 60),
        Reason("big", "100.00 CNY", "50.00 CNY", Decision.REJECT, 70),
    ))


def test_a_rule_scoped_to_a_channel_or_disabled_does_not_apply_elsewhere() -> None:
    on_taobao = rule(RuleKind.AMOUNT_LIMIT, {"max": "1.00"}, channel="taobao")
    disabled = rule(RuleKind.AMOUNT_LIMIT, {"max": "1.00"}, enabled=False)

    assert [evaluate([r], facts(), {}).decision for r in (on_taobao, disabled)] == [Decision.PASS, Decision.PASS]
    assert evaluate([on_taobao], facts(channel="taobao"), {}).decision is Decision.REJECT


def test_rules_of_one_dimension_and_window_share_one_counter() -> None:
    rules = [
        rule(RuleKind.VELOCITY, IP_5_A_MINUTE),
        Rule(2, "review at 3", RuleKind.VELOCITY, {"dimension": "IP", "limit": 3, "windowSeconds": 60}, Decision.REVIEW, 50),
        rule(RuleKind.ACCOUNT_SPREAD, {"by": "DEVICE", "maxAccounts": 3, "windowSeconds": 86400}),
        rule(RuleKind.VELOCITY, {"dimension": "DEVICE", "limit": 3, "windowSeconds": 60}),
    ]

    assert counters_needed(rules, facts(device_id="d", account="qq:1")) == [
        CounterHit("v:IP:60:203.0.113.7", None, 60),
        CounterHit("a:DEVICE:86400:d", "qq:1", 86400),
        CounterHit("v:DEVICE:60:d", None, 60),
    ]


def test_the_account_age_is_looked_up_only_when_a_new_account_rule_could_count_the_attempt() -> None:
    by_device = [rule(RuleKind.ACCOUNT_SPREAD, {"by": "DEVICE", "maxAccounts": 3, "windowSeconds": 60})]
    coupons = [rule(RuleKind.ACCOUNT_SPREAD, {"by": "PHONE", "maxAccounts": 3, "windowSeconds": 60, "couponOnly": True})]

    assert [
        needs_account_age(by_device, facts(device_id="d", account="qq:1")),
        needs_account_age(by_device, facts(account="qq:1")),  # no device to count by
        needs_account_age(by_device, facts(device_id="d")),  # no account to count
        needs_account_age(coupons, facts(account="qq:1")),  # no coupon
        needs_account_age(coupons, facts(account="qq:1", coupon="NEW10")),
    ] == [True, False, False, False, True]


def test_with_the_age_left_to_the_counter_store_each_new_account_counter_carries_the_age_that_counts_as_new() -> None:
    rules = [
        rule(RuleKind.VELOCITY, IP_5_A_MINUTE),
        rule(RuleKind.ACCOUNT_SPREAD, {"by": "DEVICE", "maxAccounts": 3, "windowSeconds": 86400}),
        rule(RuleKind.ACCOUNT_SPREAD, {"by": "DEVICE", "maxAccounts": 9, "windowSeconds": 86400, "maxAccountAgeDays": 2}),
        rule(RuleKind.ACCOUNT_SPREAD, {"by": "PHONE", "maxAccounts": 3, "windowSeconds": 600, "couponOnly": True}),
    ]

    assert counters_needed(rules, facts(device_id="d", account="qq:1"), age_from_store=True) == [
        CounterHit("v:IP:60:203.0.113.7", None, 60),
        CounterHit("a:DEVICE:86400:d", "qq:1", 86400, new_within_seconds=2 * 86400),
    ]


@pytest.mark.parametrize(
    ("kind", "parameters", "field"),
    [
        (RuleKind.VELOCITY, {"dimension": "IP", "limit": 0, "windowSeconds": 60}, "parameters.limit"),
        (RuleKind.VELOCITY, {"dimension": "COLOUR", "limit": 5, "windowSeconds": 60}, "parameters.dimension"),
        (RuleKind.VELOCITY, {"dimension": "IP", "limit": 5}, "parameters.windowSeconds"),
        (RuleKind.VELOCITY, {"dimension": "IP", "limit": "5", "windowSeconds": 60}, "parameters.limit"),
        (RuleKind.VELOCITY, {"dimension": "IP", "limit": 5, "windowSeconds": 60, "extra": 1}, "parameters.extra"),
        (RuleKind.PHONE_SEGMENT, {"prefixes": []}, "parameters.prefixes"),
        (RuleKind.PHONE_SEGMENT, {"prefixes": ["17x"]}, "parameters.prefixes.0"),
        (RuleKind.BLACKLIST, {"dimension": "IP", "values": ["not-an-ip"]}, "parameters.values.0"),
        # the entry as the operator sent it, not as sorted
        (RuleKind.BLACKLIST, {"dimension": "PHONE", "values": ["13800138000", "1380013800"]}, "parameters.values.1"),
        (RuleKind.BLACKLIST, {"dimension": "EMAIL", "values": ["z@example.cn", "a@b"]}, "parameters.values.1"),
        (RuleKind.PHONE_SEGMENT, {"prefixes": ["170", "١٧"]}, "parameters.prefixes.1"),
        (RuleKind.AMOUNT_LIMIT, {"max": "12.345"}, "parameters.max"),
        (RuleKind.AMOUNT_LIMIT, {"max": "-1"}, "parameters.max"),
        (RuleKind.AMOUNT_LIMIT, {"max": "1e3"}, "parameters.max"),
        (RuleKind.AMOUNT_LIMIT, {"max": " 50.00 "}, "parameters.max"),
        (RuleKind.AMOUNT_LIMIT, {"max": "５０"}, "parameters.max"),
        (RuleKind.AMOUNT_LIMIT, {"max": 50.5}, "parameters.max"),
        (RuleKind.QUANTITY_LIMIT, {"max": True}, "parameters.max"),
        (RuleKind.ACCOUNT_SPREAD, {"by": "EMAIL", "maxAccounts": 3, "windowSeconds": 60}, "parameters.by"),
        (RuleKind.ACCOUNT_SPREAD, {"by": "DEVICE", "maxAccounts": 3, "windowSeconds": 60, "couponOnly": "yes"}, "parameters.couponOnly"),
    ],
)
def test_bad_parameters_name_the_parameter_at_fault(kind: RuleKind, parameters: dict[str, Any], field: str) -> None:
    with pytest.raises(RuleParameterError) as raised:
        check_parameters(kind, parameters)
    assert raised.value.field == field


def test_parameters_are_stored_in_one_canonical_form() -> None:
    assert check_parameters(RuleKind.AMOUNT_LIMIT, {"max": 500}) == {"max": "500.00"}
    assert check_parameters(RuleKind.BLACKLIST, {"dimension": "PHONE", "values": [
        " 17012345678 ", "+86 130-0000-0000", "008613000000000", "13000000000"]}) == {
        "dimension": "PHONE", "values": ["13000000000", "17012345678"]}
    assert check_parameters(RuleKind.BLACKLIST, {"dimension": "EMAIL", "values": ["Bot@Spam.cn", "bot@spam.CN "]}) == {
        "dimension": "EMAIL", "values": ["bot@spam.cn"]}
    assert check_parameters(RuleKind.BLACKLIST, {"dimension": "DEVICE", "values": ["ABC", "abc"]}) == {
        "dimension": "DEVICE", "values": ["abc"]}
    assert check_parameters(RuleKind.ACCOUNT_SPREAD, {"by": "DEVICE", "maxAccounts": 3, "windowSeconds": 60}) == {
        "by": "DEVICE", "maxAccounts": 3, "windowSeconds": 60, "couponOnly": False, "maxAccountAgeDays": 0}
