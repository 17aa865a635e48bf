"""Risk rules as data, and the pure evaluation of an order attempt into a verdict.

Nothing here does I/O (the parameters each kind takes are checked in domain/risk_parameters.py).
The service gathers the facts of an attempt, asks which sliding
window counters the enabled rules need (`counters_needed`), records and counts them, and
hands the counts back to `evaluate` with the facts.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.contacts import device_key, email_key, phone_key
from domain.money import Money


class Decision(enum.Enum):
    PASS = "PASS"
    REVIEW = "REVIEW"
    REJECT = "REJECT"


_SEVERITY = {Decision.PASS: 0, Decision.REVIEW: 1, Decision.REJECT: 2}


class RuleKind(enum.Enum):
    VELOCITY = "VELOCITY"  # attempts per IP / phone / account / device in a sliding window
    PHONE_SEGMENT = "PHONE_SEGMENT"  # virtual-operator number ranges
    BLACKLIST = "BLACKLIST"  # listed IPs (or networks), phones, accounts, devices, emails
    AMOUNT_LIMIT = "AMOUNT_LIMIT"  # order total above a threshold
    QUANTITY_LIMIT = "QUANTITY_LIMIT"  # units in one order above a threshold
    ACCOUNT_SPREAD = "ACCOUNT_SPREAD"  # first-order / coupon abuse: one device or phone, many new accounts
    MODEL = "MODEL"  # the learned model's fraud score at or above a threshold (shadow: recorded, not applied)


class Dimension(enum.Enum):
    IP = "IP"
    PHONE = "PHONE"
    ACCOUNT = "ACCOUNT"
    DEVICE = "DEVICE"
    EMAIL = "EMAIL"


VIRTUAL_OPERATOR_PREFIXES = ("162", "165", "167", "170", "171")
DEFAULT_SCORE = {Decision.REVIEW: 50, Decision.REJECT: 100}
MAX_WINDOW_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    name: str
    kind: RuleKind
    parameters: Mapping[str, Any]
    action: Decision
    score: int
    channel: str | None = None  # None: every channel
    enabled: bool = True
    # What the rule compares with, prepared once when the rule is loaded, not per order:
    # parsed networks, phones, emails and devices in their canonical form, the amount as a Decimal.
    lookup: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lookup", _prepare(self.kind, self.parameters))


@dataclass(frozen=True, slots=True)
class Opinion:
    """The learned model's score of an attempt, and the features that moved it most, in words.

    With no model active, only the features: kept with the verdict to train the first model on.
    """

    version: str | None
    probability: float | None
    explanation: str
    features: tuple[float, ...] = ()
    shadow: tuple[str, ...] = ()  # shadow rules the score reached: what enforcing them would change


@dataclass(frozen=True, slots=True)
class Facts:
    """What is known of one order attempt when it is scored.

    The buyer's phone, email and device are kept in their canonical form (domain/contacts.py):
    counters, blacklists and segments see one buyer however the contact was spelled.
    """

    channel: str
    at: datetime
    amount: Money
    quantities: Mapping[int, int]  # SKU id -> units
    client_ip: str | None = None
    device_id: str | None = None
    phone: str | None = None
    email: str | None = None
    account: str | None = None  # the recharge account, else the email
    coupon: str | None = None
    # How long ago this account first ordered; None when it never did (a new account).
    account_age: timedelta | None = None
    model: Opinion | None = None  # set by the check when a model rule applies

    def __post_init__(self) -> None:
        for name, canonical in (("phone", phone_key), ("email", email_key), ("device_id", device_key)):
            given = getattr(self, name)
            if given is not None:
                object.__setattr__(self, name, canonical(given) or None)

    def value(self, dimension: Dimension) -> str | None:
        found: str | None = getattr(self, _FACT_OF[dimension])
        return found.strip() or None if found else None


_FACT_OF = {
    Dimension.IP: "client_ip", Dimension.PHONE: "phone", Dimension.ACCOUNT: "account",
    Dimension.DEVICE: "device_id", Dimension.EMAIL: "email",
}


@dataclass(frozen=True, slots=True)
class CounterHit:
    """Record `member` under `key` now and count the distinct members of the last `window` seconds."""

    key: str
    member: str | None  # None: a fresh member per attempt (counts attempts)
    window_seconds: int
    # Record only for a new account: never seen before, or first seen less than this many
    # seconds ago (0: never seen). None: always record. The counter store decides, knowing
    # when it first saw the account, in the same step that counts.
    new_within_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    rule: str
    observed: str | None
    threshold: str | None
    action: Decision
    score: int


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    score: int
    reasons: tuple[Reason, ...] = field(default=())


def _prepare(kind: RuleKind, params: Mapping[str, Any]) -> Any:
    if kind is RuleKind.BLACKLIST:
        dimension, values = Dimension(params["dimension"]), params["values"]
        if dimension is Dimension.IP:
            return tuple(ipaddress.ip_network(v, strict=False) for v in values)
        # Canonical again: rules stored before their entries were canonicalised still match.
        canonical = {Dimension.PHONE: phone_key, Dimension.EMAIL: email_key, Dimension.DEVICE: device_key}.get(dimension)
        return frozenset(canonical(v) for v in values) if canonical else frozenset(values)
    if kind is RuleKind.PHONE_SEGMENT:
        return tuple(params["prefixes"])
    if kind is RuleKind.AMOUNT_LIMIT:
        return Decimal(params["max"])
    if kind is RuleKind.MODEL:
        return float(params["threshold"])
    return None


def model_rules(rules: Sequence[Rule], channel: str) -> list[Rule]:
    """The model rules that apply on a channel, shadow ones included: the model scores if any does."""
    return [rule for rule in rules if rule.kind is RuleKind.MODEL and applies(rule, channel)]


def model_match(rule: Rule, facts: Facts) -> tuple[str, str] | None:
    """(observed, threshold) when the model's score reaches the rule's threshold."""
    if facts.model is None or facts.model.probability is None or facts.model.probability < rule.lookup:
        return None
    opinion = facts.model
    return f"score {opinion.probability:.3f} ({opinion.explanation})", f"score {rule.parameters['threshold']}"


def applies(rule: Rule, channel: str) -> bool:
    return rule.enabled and (rule.channel is None or rule.channel == channel)


# ---- evaluation ---------------------------------------------------------------------------


def _velocity_key(params: Mapping[str, Any], value: str) -> str:
    return f"v:{params['dimension']}:{params['windowSeconds']}:{value}"


def _spread_key(params: Mapping[str, Any], value: str) -> str:
    return f"a:{params['by']}:{params['windowSeconds']}:{value}"


def _is_new_account(params: Mapping[str, Any], facts: Facts) -> bool:
    if facts.account_age is None:
        return True
    return facts.account_age < timedelta(days=int(params["maxAccountAgeDays"]))


def _spread_counts(params: Mapping[str, Any], facts: Facts) -> bool:
    if facts.value(Dimension.ACCOUNT) is None or (params["couponOnly"] and not facts.coupon):
        return False
    return _is_new_account(params, facts)


def counters_needed(rules: Sequence[Rule], facts: Facts, *, age_from_store: bool = False) -> list[CounterHit]:
    """The counters this attempt records; rules of one dimension and window share one.

    With `age_from_store` the account's age is not known yet: each new-account counter comes
    with the age below which the account counts as new, for the counter store to decide.
    """
    hits: dict[str, CounterHit] = {}
    for rule in rules:
        if not applies(rule, facts.channel):
            continue
        params = rule.parameters
        if rule.kind is RuleKind.VELOCITY:
            value = facts.value(Dimension(params["dimension"]))
            if value is not None:
                key = _velocity_key(params, value)
                hits[key] = CounterHit(key, None, int(params["windowSeconds"]))
        elif rule.kind is RuleKind.ACCOUNT_SPREAD:
            value = facts.value(Dimension(params["by"]))
            if value is None:
                continue
            key = _spread_key(params, value)
            account, window = facts.value(Dimension.ACCOUNT), int(params["windowSeconds"])
            if not age_from_store:
                if _spread_counts(params, facts):
                    hits[key] = CounterHit(key, account, window)
            elif account is not None and (facts.coupon or not params["couponOnly"]):
                within = int(params["maxAccountAgeDays"]) * 86400
                shared = hits.get(key)  # rules sharing a counter: new by any of them records
                if shared is None or (shared.new_within_seconds or 0) < within:
                    hits[key] = CounterHit(key, account, window, within)
    return list(hits.values())


def needs_account_age(rules: Sequence[Rule], facts: Facts) -> bool:
    """Whether a new-account rule could count this attempt: only then is the account's age looked up."""
    return facts.value(Dimension.ACCOUNT) is not None and any(
        rule.kind is RuleKind.ACCOUNT_SPREAD and applies(rule, facts.channel)
        and facts.value(Dimension(rule.parameters["by"])) is not None
        and (facts.coupon or not rule.parameters["couponOnly"])
        for rule in rules
    )


def _ip_listed(ip: str, listed: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in network for network in listed)


def _check(rule: Rule, facts: Facts, counts: Mapping[str, int]) -> tuple[str | None, str | None] | None:
    """(observed, threshold) when the rule matches the attempt, else None."""
    params = rule.parameters
    if rule.kind is RuleKind.VELOCITY:
        value = facts.value(Dimension(params["dimension"]))
        count = counts.get(_velocity_key(params, value), 0) if value else 0
        if count > params["limit"]:
            window = params["windowSeconds"]
            return f"{count} orders by {params['dimension']} in {window}s", f"{params['limit']} in {window}s"
        return None
    if rule.kind is RuleKind.PHONE_SEGMENT:
        phone = facts.value(Dimension.PHONE)  # the national number (Facts keeps it canonical)
        if phone is None:
            return None
        for prefix in rule.lookup:
            if phone.startswith(prefix):
                return f"phone segment {prefix}", "virtual-operator segments " + ",".join(params["prefixes"])
        return None
    if rule.kind is RuleKind.BLACKLIST:
        dimension = Dimension(params["dimension"])
        value = facts.value(dimension)
        if value is None:
            return None
        listed = _ip_listed(value, rule.lookup) if dimension is Dimension.IP else value in rule.lookup
        return (f"{dimension.value} {value}", f"{dimension.value} blacklist") if listed else None
    if rule.kind is RuleKind.AMOUNT_LIMIT:
        if facts.amount.amount > rule.lookup:
            return f"{facts.amount.amount} {facts.amount.currency}", f"{params['max']} {facts.amount.currency}"
        return None
    if rule.kind is RuleKind.QUANTITY_LIMIT:
        units = sum(facts.quantities.values())
        return (f"{units} units", f"{params['max']} units") if units > params["max"] else None
    if rule.kind is RuleKind.MODEL:
        return None if params["shadow"] else model_match(rule, facts)
    value = facts.value(Dimension(params["by"]))
    if value is None or not _spread_counts(params, facts):
        return None
    accounts = counts.get(_spread_key(params, value), 0)
    if accounts > params["maxAccounts"]:
        window = params["windowSeconds"]
        return f"{accounts} new accounts by {params['by']} in {window}s", f"{params['maxAccounts']} in {window}s"
    return None


def evaluate(rules: Sequence[Rule], facts: Facts, counts: Mapping[str, int]) -> Verdict:
    """The most severe action of the matching rules; the score adds theirs up, at most 100."""
    reasons = []
    for rule in sorted(rules, key=lambda r: r.id):
        if not applies(rule, facts.channel):
            continue
        matched = _check(rule, facts, counts)
        if matched is not None:
            reasons.append(Reason(rule.name, matched[0], matched[1], rule.action, rule.score))
    if not reasons:
        return Verdict(Decision.PASS, 0)
    decision = max((reason.action for reason in reasons), key=_SEVERITY.__getitem__)
    return Verdict(decision, min(100, sum(reason.score for reason in reasons)), tuple(reasons))
