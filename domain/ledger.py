"""Double-entry postings: what each business event writes to the ledger. No I/O.

Amounts are signed integer fen, debit positive. Every transaction's postings sum to
zero. Asset accounts (the channel's receivable, our deposit at a supplier, the bank)
normally carry debit (positive) balances; liability and income accounts (commission,
margin, prepaid balances) carry credit (negative) ones, so their balance as shown is
minus the sum of their entries.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from domain.money import Money


class Account(enum.Enum):
    # What the channel collected from buyers for us (debit-normal, per channel).
    CHANNEL = "CHANNEL"
    # What we hold at a supplier: deposits less the cost of what it delivered (debit-normal).
    SUPPLIER = "SUPPLIER"
    # The channel's commission on its sales (credit-normal, per channel).
    COMMISSION = "COMMISSION"
    # The platform's margin: the rest of the payment (credit-normal, may be negative).
    MARGIN = "MARGIN"
    # A B2B channel's prepaid balance with us (credit-normal, per channel).
    PREPAID = "PREPAID"
    # The platform's bank: the other side of top-ups, supplier deposits and payments held
    # for refund (debit-normal).
    BANK = "BANK"
    # Payments received that no order could use, owed back to their payers until the refund
    # is paid (credit-normal, per channel): a liability, like a prepaid balance.
    REFUNDS_PAYABLE = "REFUNDS_PAYABLE"
    # The platform's marketing cost: discounts of campaigns the platform pays for (debit-normal).
    MARKETING = "MARKETING"


# +1 where the balance is the sum of the entries, -1 where it is minus the sum.
NORMAL_SIGN = {
    Account.CHANNEL: 1, Account.SUPPLIER: 1, Account.BANK: 1, Account.MARKETING: 1,
    Account.COMMISSION: -1, Account.MARGIN: -1, Account.PREPAID: -1, Account.REFUNDS_PAYABLE: -1,
}


class Kind(enum.Enum):
    """What a transaction records; settlement statements read DELIVERY and REFUND."""

    DELIVERY = "DELIVERY"
    REFUND = "REFUND"
    PREPAID_PAYMENT = "PREPAID_PAYMENT"
    PREPAID_REFUND = "PREPAID_REFUND"
    TOP_UP = "TOP_UP"
    SUPPLIER_DEPOSIT = "SUPPLIER_DEPOSIT"
    UNUSABLE_PAYMENT = "UNUSABLE_PAYMENT"


SETTLED_KINDS = (Kind.DELIVERY, Kind.REFUND)


class UnbalancedTransaction(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Posting:
    account: Account
    amount: Money  # debit positive


@dataclass(frozen=True, slots=True)
class LineFigures:
    """The settlement of one delivered order line: gross = cost + commission + margin."""

    gross: Money
    cost: Money
    commission: Money
    margin: Money


def commission_rate(basis_points: int) -> Decimal:
    return Decimal(basis_points).scaleb(-4)


def line_figures(unit_price: Money, unit_cost: Money, quantity: int, commission_bp: int) -> LineFigures:
    """The buyer's payment split three ways; commission is rounded once, the margin takes the rest."""
    gross = unit_price * quantity
    cost = unit_cost * quantity
    commission = gross.apply_rate(commission_rate(commission_bp))
    return LineFigures(gross, cost, commission, gross - cost - commission)


def balanced(postings: list[Posting]) -> list[Posting]:
    """`postings` if they sum to zero in one currency; anything else is a bug, refused."""
    if not postings:
        raise UnbalancedTransaction("a transaction has postings")
    currencies = {p.amount.currency for p in postings}
    if len(currencies) != 1:
        raise UnbalancedTransaction(f"postings in {sorted(currencies)}")
    if sum(p.amount.minor for p in postings) != 0:
        raise UnbalancedTransaction("postings do not sum to zero")
    return postings


def delivery(figures: LineFigures) -> list[Posting]:
    return balanced([
        Posting(Account.CHANNEL, figures.gross),
        Posting(Account.SUPPLIER, -figures.cost),
        Posting(Account.COMMISSION, -figures.commission),
        Posting(Account.MARGIN, -figures.margin),
    ])


# Where a discount's cost lands, by who bears it (domain/campaigns.Bearer's values): the
# platform's marketing account, the channel's commission (it is owed that much less), or our
# account at the supplier (it owes us that much back).
DISCOUNT_BORNE_BY = {"PLATFORM": Account.MARKETING, "CHANNEL": Account.COMMISSION, "SUPPLIER": Account.SUPPLIER}


def delivery_with_discount(figures: LineFigures, discount: Money, bearer: str) -> list[Posting]:
    """A delivered line whose buyer paid `discount` less: the channel collected that much less,
    and the cost is booked to whoever bears the campaign. Part of the delivery, so a refund's
    exact reversal undoes it too."""
    postings = delivery(figures)
    if discount.minor == 0:
        return postings
    return balanced([*postings, Posting(Account.CHANNEL, -discount), Posting(DISCOUNT_BORNE_BY[bearer], discount)])


def reversal(postings: list[Posting]) -> list[Posting]:
    """The exact negation: a refund undoes what was posted, whatever the rates are now."""
    return balanced([Posting(p.account, -p.amount) for p in postings])


def prepaid_payment(amount: Money) -> list[Posting]:
    """An order paid from a prepaid balance: the balance owes less, the channel's receivable is settled."""
    return balanced([Posting(Account.PREPAID, amount), Posting(Account.CHANNEL, -amount)])


def prepaid_refund(amount: Money) -> list[Posting]:
    """A refunded line of an order paid from the balance goes back to the balance."""
    return reversal(prepaid_payment(amount))


def top_up(amount: Money) -> list[Posting]:
    return balanced([Posting(Account.BANK, amount), Posting(Account.PREPAID, -amount)])


def supplier_deposit(amount: Money) -> list[Posting]:
    return balanced([Posting(Account.SUPPLIER, amount), Posting(Account.BANK, -amount)])


def unusable_payment(amount: Money) -> list[Posting]:
    """A payment no order could use: the money is in, and owed back to the payer."""
    return balanced([Posting(Account.BANK, amount), Posting(Account.REFUNDS_PAYABLE, -amount)])


def balance(account: Account, entries: list[Money], currency: str = "CNY") -> Money:
    """An account's balance as shown: the sum of its entries on its normal side."""
    return sum(entries, Money(0, currency)) * NORMAL_SIGN[account]
