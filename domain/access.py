"""Who is asking, and what they may read. One policy, consulted by every entry point.

| caller | reads |
|---|---|
| anonymous | the public storefront channels' catalog and prices; places guest orders there |
| buyer (an order's access token) | that one order, its codes and refunds |
| STOREFRONT key | what an anonymous caller reads, and its own channel's catalog; never keys, price-change history, commission, quotas or orders (the key ships inside public apps: anyone can take it out) |
| PARTNER key | its channel's catalog, prices, quotas, commission, keys, price changes, orders, risk verdicts and statements |
| ADMIN key | everything; supplier cost and the platform's margin are theirs only |
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class Role(enum.Enum):
    ADMIN = "ADMIN"
    PARTNER = "PARTNER"
    STOREFRONT = "STOREFRONT"


@dataclass(frozen=True, slots=True)
class Allowance:
    """A caller's budget of query cost: a bucket of `maximum` points refilled at
    `restore_rate` points a second (see domain/admission.py)."""

    maximum: int
    restore_rate: int

    def __post_init__(self) -> None:
        if self.maximum < 1 or self.restore_rate < 1:
            raise ValueError("a budget holds and restores at least one point")


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role | None = None  # None: an anonymous caller
    channel: str | None = None  # the channel a partner or storefront key is bound to
    key_prefix: str | None = None  # the clear prefix of the key, for audit trails
    order_number: str | None = None  # a buyer holding the access token of one order
    allowance: Allowance | None = None  # the key's own budget, where an operator set one
    expires_at: datetime | None = None  # when the key stops working; None: when revoked

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def actor(self) -> str:
        """How audit records name this caller; never the key itself."""
        if self.order_number is not None:
            return f"buyer:{self.order_number}"
        if self.role is None:
            return "anonymous"
        return f"{self.role.value.lower()}:{self.key_prefix or '-'}"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def visibility(self) -> tuple[Role | None, str | None, str | None]:
        """What decides the answers this caller may read: callers alike in it read alike.
        Which key it is, its expiry and its budget decide whether it may ask, not what it sees."""
        return (self.role, self.channel, self.order_number)


ANONYMOUS = Principal()


def may_read_channel(principal: Principal, channel: str, *, public: bool) -> bool:
    """Admins read every channel; a key reads its own; anyone reads public storefronts."""
    if principal.is_admin or public:
        return True
    return principal.channel == channel


def may_read_channel_private(principal: Principal, channel: str) -> bool:
    """Quotas, commission, price-change history, balances and keys of a channel: operators and
    that channel's partner. Not a storefront key: it ships inside a public app."""
    return principal.is_admin or (
        principal.role is Role.PARTNER and principal.channel is not None and principal.channel == channel
    )


def may_see_schema(principal: Principal) -> bool:
    """Introspection, and validation errors that suggest names: partners and operators, who
    build against the schema. Not the public, nor a storefront key that ships inside an app:
    in production the schema is no map for a scraper."""
    return principal.role in (Role.ADMIN, Role.PARTNER)


def may_read_costs(principal: Principal) -> bool:
    """Supplier cost and the platform's margin, wherever they appear: operators only."""
    return principal.is_admin


def may_read_order(principal: Principal, channel: str, number: str) -> bool:
    """An order: its buyer (access token), its channel's partner, operators.

    A storefront key lives in a public app, so it does not open the channel's orders;
    the buyer reads an order with the access token returned when it was placed.
    """
    if principal.is_admin:
        return True
    if principal.order_number is not None:
        return principal.order_number == number
    return principal.role is Role.PARTNER and principal.channel == channel


def may_read_membership(principal: Principal, channel: str, number: str) -> bool:
    """A membership: its buyer (the access token `subscribe` returned), its channel's partner,
    operators. Its token opens the membership alone, never an order (numbers differ)."""
    return may_read_order(principal, channel, number)


def may_read_risk(principal: Principal, channel: str) -> bool:
    """Risk verdicts of a channel's attempts: operators and that channel's partner.

    Never a buyer or a storefront key: the reasons would teach a bot the thresholds.
    """
    return principal.is_admin or (principal.role is Role.PARTNER and principal.channel == channel)
