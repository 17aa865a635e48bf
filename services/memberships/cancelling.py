"""Cancelling a membership: any time, by its buyer, its channel's partner or an operator.

One conditional UPDATE of the membership's row ends it, while it still renews. A renewal
charges with that row locked (services/memberships/charging.py), so the cancel waits for
a charge under way and is seen by every charge after it: none is made once the cancel has
committed. The period paid for stays the buyer's; the agreement is ended at the provider.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import update

from domain.memberships import CANCELLED, RENEWING, MembershipStatus
from models import Membership
from providers.base import ProviderError
from providers.recurring import RecurringPayments
from services.core.database import rows_changed
from services.core.unit_of_work import UnitOfWork
from services.memberships import charging

log = logging.getLogger("quanyi.memberships")


async def cancel(
    uow: UnitOfWork, membership: Membership, provider: RecurringPayments | None, *, actor: str, now: datetime,
) -> bool:
    """End `membership`; False when it had ended already (cancelled or lapsed)."""
    session = uow.session
    result = await session.execute(
        update(Membership)
        .where(Membership.id == membership.id, Membership.status.in_(tuple(RENEWING)))
        .values(status=MembershipStatus.CANCELLED, ended_at=now, ended_by=actor[:64], updated_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(membership)
    if rows_changed(result) != 1:
        return False
    charging.record(session, membership, CANCELLED, now=now, actor=actor,
                    detail=f"paid through period {membership.paid_periods}")
    if provider is not None:
        try:
            await provider.cancel(membership.agreement_id, membership.number)
        except ProviderError as error:
            # Ours is the record that stops renewals; the provider's agreement only backs it.
            log.warning("membership %s: the provider did not end the agreement: %s", membership.number, error.code)
    return True
