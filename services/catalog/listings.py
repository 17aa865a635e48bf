"""Putting a product on sale on a channel, or taking it off, at a place in the channel's catalog.

A new product is on no channel: it sells where an operator lists it. Listing again moves
it (a new position) or changes nothing; unlisting a product that is not listed changes
nothing either. Every change is in the catalog change log.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from domain.catalog_input import CatalogRefused, Problem, refused
from models import CatalogChange, Channel, Listing, Product
from services.catalog.apply import Applied, apply_plan
from services.catalog.commands import announce
from services.catalog.plan import Mode, make_plan
from services.catalog.records import listing_record
from services.catalog.state import CatalogState
from services.core.unit_of_work import UnitOfWork


async def set_listing(
    uow: UnitOfWork, channel: str, product_id: int, *, listed: bool, position: int | None, actor: str, at: datetime,
) -> int | None:
    """List (or unlist) a product on a channel; the listing's position, None once unlisted."""
    session = uow.session
    slug = await session.scalar(select(Product.slug).where(Product.id == product_id))
    if slug is None:
        raise refused("productId", "no such product", "NOT_FOUND")
    if listed:
        record = {"type": "listing", "channel": channel, "product": slug, "position": position}
        plan = await make_plan(session, [record], mode=Mode.UPSERT, prefix=lambda _: "")
        if not plan.ok:
            raise CatalogRefused([_renamed(p) for p in plan.problems])
        step = plan.steps[0]
        applied = await apply_plan(session, plan, actor=actor, at=at)
        if step.action.value != "UNCHANGED":
            announce(uow, applied)
        return int(step.after["position"])
    channel_row = await session.scalar(select(Channel).where(Channel.code == channel.strip().lower()))
    if channel_row is None:
        raise refused("channel", f"no channel {channel!r}", "NOT_FOUND")
    state = await CatalogState.of_records(session, [{"type": "listing", "channel": channel_row.code, "product": slug}])
    position = state.listing_position(channel_row.code, slug)
    if position is None:
        return None
    await session.execute(delete(Listing).where(Listing.channel_id == channel_row.id, Listing.product_id == product_id))
    session.add(CatalogChange(
        entity="LISTING", entity_id=product_id, code=f"{channel_row.code}/{slug}", action="UNLISTED", actor=actor,
        before=listing_record(channel_row.code, slug, position), after=None, at=at,
    ))
    announce(uow, Applied())
    return None


def _renamed(problem: Problem) -> Problem:
    """Problems as the API names its fields: the product is `productId` there."""
    field = "productId" if problem.field == "product" else problem.field
    return Problem(field, problem.message, problem.code)
