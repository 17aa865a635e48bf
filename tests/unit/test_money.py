"""Money is exact: prices parse from decimal strings, add up to the fen and print as "9.90"."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.money import MAX_MINOR, Money, MoneyError


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("9.90", "CNY", 990),
        ("9.9", "CNY", 990),
        ("9.900", "CNY", 990),  # trailing zeros are not extra precision
        ("10", "CNY", 1000),
        ("0.01", "CNY", 1),
        ("0", "CNY", 0),
        ("-0.00", "CNY", 0),
        ("-3.50", "CNY", -350),
        ("+5", "CNY", 500),
        ("1000", "JPY", 1000),
        ("92233720368547758.07", "CNY", MAX_MINOR),
    ],
)
def test_a_price_typed_as_a_decimal_string_becomes_whole_fen(
    text: str, currency: str, minor: int
) -> None:
    assert Money.of(text, currency) == Money(minor, currency)


def test_a_price_given_as_a_decimal_or_whole_number_is_exact() -> None:
    assert Money.of(Decimal("19.90")) == Money(1990)
    assert Money.of(Decimal("1E+2")) == Money(10000)
    assert Money.of(25) == Money(2500)


@pytest.mark.parametrize("amount", [9.9, 0.1 + 0.2, 10.0])
def test_a_float_price_is_refused_even_when_it_looks_round(amount: float) -> None:
    with pytest.raises(MoneyError, match="float"):
        Money.of(amount)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("9.901", "CNY"), ("0.001", "CNY"), ("9.9", "JPY"), (Decimal("1E-100000"), "CNY")],
)
def test_more_decimals_than_the_currency_has_is_refused_not_rounded(
    amount: str | Decimal, currency: str
) -> None:
    with pytest.raises(MoneyError, match="more decimals"):
        Money.of(amount, currency)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " 9.90",
        "9.90 ",
        "9,90",
        "1e3",
        "1_000",
        "٩.٩٠",
        ".5",
        "5.",
        "NaN",
        "Infinity",
        "¥9.90",
        "9.90 CNY",
    ],
)
def test_anything_but_a_plain_decimal_string_is_refused(text: str) -> None:
    with pytest.raises(MoneyError, match="not a decimal amount"):
        Money.of(text)


@pytest.mark.parametrize("amount", [True, None, [1], Decimal("NaN"), Decimal("-Infinity")])
def test_values_that_are_not_amounts_are_refused(amount: object) -> None:
    with pytest.raises(MoneyError):
        Money.of(amount)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["92233720368547758.08", "12345678901234567890123456789.01"])
def test_an_amount_beyond_what_storage_holds_is_refused(text: str) -> None:
    with pytest.raises(MoneyError, match="too large"):
        Money.of(text)


def test_an_unknown_currency_is_refused() -> None:
    with pytest.raises(MoneyError, match="unsupported currency 'XBT'"):
        Money.of("1.00", "XBT")


def test_money_is_held_in_whole_minor_units_only() -> None:
    with pytest.raises(MoneyError):
        Money(9.9)  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(True)
    with pytest.raises(MoneyError, match="too large"):
        Money(MAX_MINOR + 1)


@pytest.mark.parametrize(
    ("money", "shown"),
    [
        (Money(990), "9.90"),
        (Money(1000), "10.00"),
        (Money(5), "0.05"),
        (Money(0), "0.00"),
        (Money(-5), "-0.05"),
        (Money(1980, "JPY"), "1980"),
        (Money(MAX_MINOR), "92233720368547758.07"),
    ],
)
def test_an_amount_always_shows_the_currencys_decimals(money: Money, shown: str) -> None:
    assert str(money.amount) == shown


def test_a_price_prints_with_its_currency() -> None:
    assert str(Money.of("9.90")) == "9.90 CNY"


def test_three_at_nine_ninety_cost_exactly_twenty_nine_seventy() -> None:
    assert Money.of("9.90") * 3 == Money.of("29.70")
    assert 3 * Money.of("9.90") == Money.of("29.70")


def test_ten_cents_and_twenty_cents_make_thirty_cents() -> None:
    assert Money.of("0.10") + Money.of("0.20") == Money.of("0.30")


def test_a_refund_larger_than_the_payment_goes_negative() -> None:
    assert Money.of("9.90") - Money.of("10.00") == Money.of("-0.10")
    assert -Money.of("9.90") == Money(-990)


@pytest.mark.parametrize("quantity", [1.5, True, Decimal(2)])
def test_money_is_multiplied_by_whole_quantities_only(quantity: object) -> None:
    with pytest.raises(MoneyError, match="whole quantities"):
        Money.of("9.90") * quantity  # type: ignore[operator]


@pytest.mark.parametrize(
    "combine", [lambda a, b: a + b, lambda a, b: a - b], ids=["add", "subtract"]
)
def test_yuan_and_dollars_do_not_mix(combine: object) -> None:
    with pytest.raises(MoneyError, match="cannot combine CNY with USD"):
        combine(Money.of("1.00", "CNY"), Money.of("1.00", "USD"))  # type: ignore[operator]


def test_money_does_not_combine_with_plain_numbers() -> None:
    with pytest.raises(MoneyError):
        Money.of("1.00") + 1  # type: ignore[operator]


def test_the_same_figure_in_two_currencies_is_not_equal() -> None:
    assert Money(100, "CNY") != Money(100, "USD")


@pytest.mark.parametrize(
    ("price", "rate", "share"),
    [
        ("100.00", "0.05", "5.00"),  # a 5% commission
        ("0.10", "0.05", "0.01"),  # 0.5 fen rounds up
        ("0.09", "0.05", "0.00"),  # 0.45 fen rounds down
        ("0.30", "0.05", "0.02"),  # 1.5 fen rounds up, not to even
        ("0.50", "0.05", "0.03"),  # 2.5 fen rounds up, not to even
        ("-0.50", "0.05", "-0.03"),  # a reversal mirrors the original
        ("9.90", "0.006", "0.06"),  # 0.6%: 5.94 fen
        ("92233720368547758.07", "1", "92233720368547758.07"),
    ],
)
def test_a_rate_takes_a_share_rounded_half_up_to_the_fen(price: str, rate: str, share: str) -> None:
    assert Money.of(price).apply_rate(Decimal(rate)) == Money.of(share)


def test_a_rate_given_as_a_float_is_refused() -> None:
    with pytest.raises(MoneyError, match="float"):
        Money.of("100.00").apply_rate(0.05)  # type: ignore[arg-type]
