"""`quanyi coupons generate`: single-use codes of a campaign into a CSV file that only its owner
can read, safe to open in a spreadsheet, with only the codes' digests in the database."""

from __future__ import annotations

import csv
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from config import Settings
from domain.campaigns import code_digest, code_key
from models import Channel, CouponCode, Sku
from services.campaigns.admin import NewCampaign, create_campaign
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.demo.seed import seed_demo
from tests.e2e.shop import migrated_database
from tests.support import new_secret_key
from tests.test_cli_import import Pools


@dataclass
class Shop:
    pools: Pools
    campaign_id: int


@pytest.fixture(scope="module")
async def shop(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shop]:
    async with migrated_database(tmp_path_factory.mktemp("cli-coupons")) as url:
        db = Database.connect(Settings(database_url=url))
        key = new_secret_key()
        try:
            await seed_demo(db, SecretBox(key))
            async with db.sessions() as session, session.begin():
                web = await session.scalar(select(Channel).where(Channel.code == "web"))
                sku = await session.scalar(select(Sku.id).order_by(Sku.id).limit(1))
                assert web is not None and sku is not None
                # A name a spreadsheet would run as a formula, were the cell not made inert.
                new = NewCampaign(name='=HYPERLINK("http://evil/")', channel=web, sku_ids=[sku], amount_off=None, percent_off=10)
                campaign = await create_campaign(session, new, actor="test", now=datetime.now(UTC))
            yield Shop(Pools(db, url, key), campaign.id)
        finally:
            await db.dispose()


async def test_generated_codes_land_in_an_owner_only_csv_and_as_digests_in_the_database(shop: Shop, tmp_path: Path) -> None:
    out = tmp_path / "codes.csv"

    run = await shop.pools.quanyi("coupons", "generate", "--campaign", str(shop.campaign_id), "--count", "250", "--out", out)

    assert (run.code, run.stdout.strip()) == (0, f"250 codes written to {out}")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with out.open(newline="", encoding="utf-8") as found:
        rows = list(csv.reader(found))
    assert rows[0] == ["campaign", "code"]
    assert {row[0] for row in rows[1:]} == {"'=HYPERLINK(\"http://evil/\")"}
    codes = [row[1] for row in rows[1:]]
    assert len(set(codes)) == 250
    async with shop.pools.db.sessions() as session:
        stored = set(await session.scalars(select(CouponCode.digest).where(CouponCode.campaign_id == shop.campaign_id)))
    assert stored == {code_digest(code_key(code) or "") for code in codes}
    assert not any(code.replace("-", "") in " ".join(stored) for code in codes)


async def test_an_existing_file_is_never_written_over_and_an_unknown_campaign_writes_nothing(shop: Shop, tmp_path: Path) -> None:
    kept = tmp_path / "kept.csv"
    kept.write_text("someone else's file\n")
    missing = tmp_path / "missing.csv"

    over = await shop.pools.quanyi("coupons", "generate", "--campaign", str(shop.campaign_id), "--count", "5", "--out", kept)
    unknown = await shop.pools.quanyi("coupons", "generate", "--campaign", "999999", "--count", "5", "--out", missing)
    too_many = await shop.pools.quanyi("coupons", "generate", "--campaign", str(shop.campaign_id), "--count", "0", "--out", missing)

    assert (over.code, kept.read_text()) == (2, "someone else's file\n")
    assert (unknown.code, unknown.stderr.strip()) == (2, "quanyi: campaign: no campaign 999999")
    assert too_many.code == 2 and "count" in too_many.stderr
    assert not missing.exists() and list(tmp_path.glob(".*partial")) == []
