"""Buyer profiles (用户画像) for operators: by segment, paged, and the count per segment."""

from __future__ import annotations

import base64
import binascii
import re

import strawberry

from schema.buyers import BuyerProfile, BuyerProfileConnection, BuyerProfileEdge, BuyerSegment, BuyerSegmentCount
from schema.context import Info
from schema.errors import BadUserInput
from schema.permissions import ADMIN_ONLY
from schema.relay import page_info, page_size
from services.analytics import buyers

_KEY = re.compile(r"[0-9a-f]{32}")


def _cursor(key: str) -> str:
    return base64.b64encode(f"BuyerProfileCursor:{key}".encode()).decode()


def _after(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        kind, _, key = base64.b64decode(cursor, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        kind, key = "", ""
    if kind != "BuyerProfileCursor" or not _KEY.fullmatch(key):
        raise BadUserInput(f"{cursor[:64]!r} is not a cursor of this list", field="after")
    return key


@strawberry.type
class BuyersQuery:
    @strawberry.field(permission_classes=ADMIN_ONLY, description="Buyer profiles, optionally of one segment; contacts masked.")
    async def buyer_profiles(
        self, info: Info, segment: BuyerSegment | None = None, first: int | None = 20, after: str | None = None,  # type: ignore[valid-type]
    ) -> BuyerProfileConnection:
        limit = page_size(first, default=20, maximum=info.context.settings.limits.max_page_size)
        async with info.context.db.read_sessions() as session:
            page = await buyers.profiles(session, segment_=segment, after=_after(after), first=limit)
        edges = [BuyerProfileEdge(cursor=_cursor(row.key), node=BuyerProfile.from_model(row, info.context.now))
                 for row in page.rows]
        return BuyerProfileConnection(
            edges=edges, page_info=page_info([e.cursor for e in edges], more=page.has_next, after=after),
        )

    @strawberry.field(permission_classes=ADMIN_ONLY, description="How many buyers each segment holds.")
    async def buyer_segments(self, info: Info) -> list[BuyerSegmentCount]:
        async with info.context.db.read_sessions() as session:
            found = await buyers.segment_counts(session)
        return [BuyerSegmentCount(segment=segment, buyers=count) for segment, count in found.items()]
