"""The ledger's postings: every transaction balances, a refund undoes its delivery exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import ledger
from domain.ledger import Account, Posting, UnbalancedTransaction
from domain.money import Money

prices = st.integers(min_value=0, max_value=10**9)
quantities = st.integers(min_value=1, max_value=1_000)
rates = st.integers(min_value=0, max_value=10_000)


def total(postings: list[Posting]) -> int:
    return sum(p.amount.minor for p in postings)


def by_account(postings: list[Posting]) -> dict[Account, int]:
    sums: dict[Account, int] = {}
    for p in postings:
        sums[p.account] = sums.get(p.account, 0) + p.amount.minor
    return sums


@given(price=prices, cost=prices, quantity=quantities, bp=rates)
def test_a_delivery_balances_and_splits_the_payment_exactly(price: int, cost: int, quantity: int, bp: int) -> None:
    figures = ledger.line_figures(Money(price), Money(cost), quantity, bp)
    postings = ledger.delivery(figures)

    assert total(postings) == 0
    assert figures.gross == figures.cost + figures.commission + figures.margin
    assert figures.gross.minor == price * quantity and figures.cost.minor == cost * quantity
    assert figures.commission == Money(price * quantity).apply_rate(Decimal(bp) / 10_000)


@given(
    orders=st.lists(
        st.tuples(st.lists(st.tuples(prices, prices, quantities, st.booleans()), min_size=1, max_size=5), rates),
        min_size=1, max_size=20,
    )
)
def test_random_orders_and_refunds_leave_every_transaction_and_the_books_balanced(
    orders: list[tuple[list[tuple[int, int, int, bool]], int]],
) -> None:
    journal: list[list[Posting]] = []
    kept = Money(0)
    for lines, bp in orders:
        for price, cost, quantity, refunded in lines:
            figures = ledger.line_figures(Money(price), Money(cost), quantity, bp)
            delivered = ledger.delivery(figures)
            journal.append(delivered)
            if refunded:
                journal.append(ledger.reversal(delivered))
            else:
                kept += figures.gross

    assert [total(t) for t in journal] == [0] * len(journal)
    books = by_account([p for t in journal for p in t])
    assert sum(books.values()) == 0
    assert books.get(Account.CHANNEL, 0) == kept.minor
    assert books[Account.CHANNEL] == -(books[Account.SUPPLIER] + books[Account.COMMISSION] + books[Account.MARGIN])


@given(amount=st.integers(min_value=1, max_value=10**12))
def test_prepaid_payment_and_refund_cancel_out(amount: int) -> None:
    paid = ledger.prepaid_payment(Money(amount))
    back = ledger.prepaid_refund(Money(amount))

    assert (total(paid), total(back)) == (0, 0)
    assert by_account(paid + back) == {Account.PREPAID: 0, Account.CHANNEL: 0}


@given(top_ups=st.lists(st.integers(min_value=1, max_value=10**9), max_size=10),
       payments=st.lists(st.integers(min_value=1, max_value=10**9), max_size=10))
def test_a_prepaid_balance_is_its_entries_on_the_credit_side(top_ups: list[int], payments: list[int]) -> None:
    entries = [p.amount for t in top_ups for p in ledger.top_up(Money(t)) if p.account is Account.PREPAID]
    entries += [p.amount for t in payments for p in ledger.prepaid_payment(Money(t)) if p.account is Account.PREPAID]

    assert ledger.balance(Account.PREPAID, entries) == Money(sum(top_ups) - sum(payments))


def test_a_supplier_balance_is_deposits_less_costs() -> None:
    deposit = ledger.supplier_deposit(Money(100_000))
    delivered = ledger.delivery(ledger.line_figures(Money(1_000), Money(900), 3, 500))
    entries = [p.amount for p in deposit + delivered if p.account is Account.SUPPLIER]

    assert ledger.balance(Account.SUPPLIER, entries) == Money(100_000 - 2_700)


@given(payments=st.lists(st.integers(min_value=1, max_value=10**9), max_size=10))
def test_payments_no_order_could_use_are_owed_back_in_full(payments: list[int]) -> None:
    postings = [p for amount in payments for p in ledger.unusable_payment(Money(amount))]
    owed = [p.amount for p in postings if p.account is Account.REFUNDS_PAYABLE]

    assert total(postings) == 0
    assert ledger.balance(Account.REFUNDS_PAYABLE, owed) == Money(sum(payments))  # a liability, shown positive


def test_the_margin_may_be_negative_and_still_balances() -> None:
    figures = ledger.line_figures(Money(1_000), Money(990), 1, 200)

    assert (figures.commission, figures.margin) == (Money(20), Money(-10))
    assert total(ledger.delivery(figures)) == 0


def test_commission_is_rounded_once_half_up() -> None:
    assert ledger.line_figures(Money(333), Money(0), 3, 250).commission == Money(25)  # 999 × 2.5% = 24.975


def test_postings_that_do_not_sum_to_zero_are_refused() -> None:
    with pytest.raises(UnbalancedTransaction):
        ledger.balanced([Posting(Account.CHANNEL, Money(10)), Posting(Account.MARGIN, Money(-9))])
    with pytest.raises(UnbalancedTransaction):
        ledger.balanced([Posting(Account.CHANNEL, Money(10)), Posting(Account.MARGIN, Money(-10, "USD"))])
