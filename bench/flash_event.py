"""The flash sale run as a sale event (预约抢购): `python bench/flash_sale.py --sale-event`.

Once the gateway serves, an operator's key schedules the hot SKU's sale LEAD seconds ahead
(`--sale-event LEAD`, 12 by default) through `scheduleSale`, with registration closing two
seconds before the start; every buyer the rush will send (the phone of `flash_load.order_request`) is then registered, in
bulk in the database as a mass pre-registration would leave it. The gateway warms itself
for the sale a few seconds before the start (its warm-up job), and the rush begins at the
start. Every run prints the answers to orders sent in the rush's first second beside the later
ones (`seconds_report`): cold, a rush's first second is several times slower than the rest.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import insert

from config import Settings
from domain.access import Role
from flash_load import PLACED, Tally, buyer_phone
from models import SaleRegistration
from schema.relay import decode_pk
from services.access.keys import issue_key
from services.core.database import Database

SCHEDULE = """
mutation Schedule($input: ScheduleSaleInput!) {
  scheduleSale(input: $input) { sale { id startsAt } userErrors { field message code } }
}
"""
BATCH = 1_000


def schedule_event(settings: Settings, base_url: str, sku_gid: str, channel: str, buyers: int, lead: float) -> float:
    """Schedules the sale `lead` seconds ahead and registers `buyers`; the start, as epoch seconds."""
    key = asyncio.run(_admin_key(settings))
    start = datetime.now(UTC) + timedelta(seconds=lead)
    variables = {"input": {
        "channel": channel, "skuId": sku_gid, "startsAt": start.isoformat(),
        "registrationClosesAt": (start - timedelta(seconds=2)).isoformat(),
    }}
    answer = httpx.post(
        f"{base_url}/graphql", json={"query": SCHEDULE, "variables": variables},
        headers={"Authorization": f"Bearer {key}"}, timeout=30,
    ).json()
    payload = (answer.get("data") or {}).get("scheduleSale")
    if payload is None or payload["userErrors"]:
        raise SystemExit(f"could not schedule the sale: {answer}")
    asyncio.run(_register(settings, decode_pk(payload["sale"]["id"], "Sale"), buyers))
    if time.time() > start.timestamp() - 2:
        raise SystemExit("registering the buyers took longer than --lead allows; give a longer --lead")
    return start.timestamp()


async def _admin_key(settings: Settings) -> str:
    db = Database.connect(settings)
    try:
        async with db.sessions() as session, session.begin():
            return (await issue_key(session, role=Role.ADMIN, channel=None, name="flash sale event")).plaintext
    finally:
        await db.dispose()


async def _register(settings: Settings, sale_id: int, buyers: int) -> None:
    db = Database.connect(settings)
    now = datetime.now(UTC)
    rows = [{"sale_id": sale_id, "phone": buyer_phone(n), "registered_at": now} for n in range(buyers)]
    try:
        async with db.sessions() as session, session.begin():
            for first in range(0, len(rows), BATCH):
                await session.execute(insert(SaleRegistration), rows[first : first + BATCH])
    finally:
        await db.dispose()


def seconds_report(tally: Tally) -> str:
    """The answers to orders sent in the rush's first second, beside those sent after it: all
    of them, then the placed ones alone. A pool that sells out within seconds leaves mostly
    refusals (answered from memory) after the first second, so the placed orders compare the
    first second's work with the same work later."""
    sent = [
        (at - latency, latency, verdict)
        for at, latency, (_, verdict) in zip(tally.answered_at, tally.latencies, tally.answers, strict=True)
    ]

    def split(rows: list[tuple[float, float, str]]) -> tuple[list[float], list[float]]:
        return (sorted(latency for when, latency, _ in rows if when < 1.0),
                sorted(latency for when, latency, _ in rows if when >= 1.0))

    def median(values: list[float]) -> str:
        return f"median answer {values[len(values) // 2] * 1000:.1f} ms" if values else "none"

    first, later = split(sent)
    placed_first, placed_later = split([row for row in sent if row[2] == PLACED])
    return (
        f"gateway's rush: {len(first):,} orders sent in its first second, {median(first)}; "
        f"{len(later):,} sent after it, {median(later)}. Placed orders alone: {len(placed_first):,} "
        f"sent in the first second, {median(placed_first)}; {len(placed_later):,} after it, {median(placed_later)}"
    )
