"""Buyers register for a sale while its registration window is open.

A buyer is named by the identities purchase limits count (phone, e-mail, device, recharge
account), each in canonical form: `+86 138 0013 8000`, `0086 13800138000` and `13800138000`
register one buyer, once. A registration naming an identity already registered adds nothing
and is answered as a success, whoever registered it: the answer does not tell a caller
whether a stranger's phone is registered.

Floods: every identity registers once per sale (the table's unique indexes), and a client
address from the public registers at most `per_address` new buyers per sale, counted by
the same single-statement tally as purchase limits (services/orders/tallies.py), so
concurrent requests through any number of processes cannot pass the cap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from domain.contacts import ContactError, device_key, email_address, mainland_mobile
from domain.limits import Identity, Tally
from domain.sales import Sale, SaleError
from models import SaleRegistration
from services.orders import tallies
from services.sales.book import sale_of
from services.sales.schedule import latest_sale

MAX_IDENTITY = 128


def _canonical(field: str, value: str | None, form: Callable[[str], str]) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_IDENTITY:
        raise SaleError(f"buyer.{field}", f"at most {MAX_IDENTITY} characters", "INVALID_INPUT")
    try:
        return form(value)
    except ContactError as error:
        raise SaleError(f"buyer.{field}", str(error), "INVALID_INPUT") from None


def buyer_identity(phone: str | None, email: str | None, device: str | None, account: str | None) -> Identity:
    """The buyer in canonical form, as an order naming them is compared; SaleError if unnamed."""
    who = Identity(
        phone=_canonical("phone", phone, mainland_mobile),
        email=_canonical("email", email, email_address),
        device=_canonical("deviceId", device, device_key),
        account=_canonical("rechargeAccount", account, str.strip),
    )
    if not who.contacts():
        raise SaleError("buyer", "give a phone number, e-mail address, device or account to register", "CONTACT_REQUIRED")
    return who


@dataclass(frozen=True, slots=True)
class Registered:
    sale: Sale
    added: bool  # False: the buyer was registered already (told to nobody but the count)


async def register(
    session: AsyncSession, channel_id: int, sku_id: int, who: Identity, *,
    address: str | None, per_address: int | None, now: datetime,
) -> Registered:
    """Register the buyer for the SKU's sale on the channel, or SaleError.

    `address` and `per_address` are given for a caller from the public: the client's address
    and how many buyers it may register for one sale (None: no cap).
    """
    row = await latest_sale(session, channel_id, sku_id)
    if row is None:
        raise SaleError("skuId", "no sale of this SKU is scheduled on the channel", "NOT_FOUND")
    sale = sale_of(row)
    if not sale.needs_registration:
        raise SaleError("skuId", "this sale is open to every buyer: there is nothing to register for", "REGISTRATION_NOT_REQUIRED")
    opens, closes = sale.registration_opens_at, sale.registration_closes_at
    assert opens is not None and closes is not None
    if now < opens:
        raise SaleError("skuId", f"registration opens at {opens.isoformat()}", "REGISTRATION_NOT_OPEN")
    if now >= closes:
        raise SaleError("skuId", "registration for this sale has closed", "REGISTRATION_CLOSED")

    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # No conflict target: a clash on any identity's unique index adds nothing.
    added = await session.scalar(
        insert(SaleRegistration).values(
            sale_id=sale.id, phone=who.phone, email=who.email, device=who.device, account=who.account,
            address=address, registered_at=now,
        ).on_conflict_do_nothing().returning(SaleRegistration.id)
    )
    if added is not None and address is not None and per_address is not None:
        counted = await tallies.take(session, [Tally(f"sale-registrations:{sale.id}", f"ip:{address}", 1, per_address)])
        if isinstance(counted, Tally):
            raise SaleError(
                None, f"at most {per_address} buyers may register for this sale from one address", "REGISTRATION_LIMIT"
            )
    return Registered(sale, added is not None)
