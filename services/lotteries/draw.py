"""Lotteries (抽奖): operators create one with its prize; buyers enter within the window, each
within a per-buyer limit and past the risk check; the draw runs once, at the set time.

An entry is numbered in its own transaction (a conditional UPDATE of the lottery's count that
also refuses a lottery already drawn), after the buyer's tallies (services/orders/tallies.py: one
count per phone, e-mail and device in canonical form, so another spelling of the same phone is the
same buyer, and concurrent entries cannot pass the limit). The draw is one conditional UPDATE
from OPEN to DRAWN: of two workers (or an operator and a worker) only one draws; the winners
follow from the seed committed at creation and the entry numbers 1..N (domain/draws.winners).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.catalog import CodeStatus, SkuKind
from domain.draws import SEED_BYTES, commitment, winners
from domain.limits import Identity, Tally
from domain.risk import Decision, Facts
from domain.money import Money
from models import Campaign, CardCode, Channel, Lottery, LotteryEntry, Sku
from models.lotteries import DRAWN, ENTERED, LOST, OPEN, WON
from services.campaigns.admin import generate_codes
from services.core import jobs
from services.core.secret_box import SecretBox
from services.orders import tallies
from services.orders.draft import Buyer
from services.risk.check import RiskCheck

LOTTERY_DRAW = "lottery-draw"
MAX_WINNERS = 10_000
MAX_ENTRIES_PER_BUYER = 100
TOKEN_PREFIX = "le_"


@dataclass(frozen=True, slots=True)
class LotteryRefusal:
    field: str | None
    message: str
    code: str


@dataclass(frozen=True, slots=True)
class CreateLottery:
    name: str
    channel: str
    opens_at: datetime
    closes_at: datetime
    draw_at: datetime
    winners: int
    per_buyer_limit: int
    campaign_id: int | None = None
    prize_sku_id: int | None = None


def _context(lottery_id: int) -> bytes:
    return f"lottery:{lottery_id}".encode()


def label(lottery_id: int) -> str:
    """What the draw's blocks are keyed by: domain/draws.winners(seed, label, ["1".."N"], winners)."""
    return f"lottery:{lottery_id}"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create(
    session: AsyncSession, seeds: SecretBox, command: CreateLottery, actor: str, now: datetime,
) -> Lottery | LotteryRefusal:
    name = command.name.strip()
    if not 1 <= len(name) <= 200:
        return LotteryRefusal("name", "1 to 200 characters", "INVALID_INPUT")
    channel = await session.scalar(select(Channel).where(Channel.code == command.channel))
    if channel is None:
        return LotteryRefusal("channel", f"unknown channel {command.channel!r}", "UNKNOWN_CHANNEL")
    if not command.opens_at < command.closes_at <= command.draw_at:
        return LotteryRefusal("drawAt", "entries open, then close, then the draw: in that order", "INVALID_INPUT")
    if command.draw_at <= now:
        return LotteryRefusal("drawAt", "the draw is in the future", "INVALID_INPUT")
    if not 1 <= command.winners <= MAX_WINNERS:
        return LotteryRefusal("winners", f"1 to {MAX_WINNERS:,} winners", "INVALID_INPUT")
    if not 1 <= command.per_buyer_limit <= MAX_ENTRIES_PER_BUYER:
        return LotteryRefusal("perBuyerLimit", f"1 to {MAX_ENTRIES_PER_BUYER} entries per buyer", "INVALID_INPUT")
    if (command.campaign_id is None) == (command.prize_sku_id is None):
        return LotteryRefusal("campaignId", "one prize: a campaign's coupon or a card code SKU", "INVALID_INPUT")
    if command.campaign_id is not None:
        campaign = await session.get(Campaign, command.campaign_id)
        if campaign is None or campaign.channel_id != channel.id:
            return LotteryRefusal("campaignId", "no such campaign on this channel", "NOT_FOUND")
    if command.prize_sku_id is not None:
        sku = await session.get(Sku, command.prize_sku_id)
        if sku is None or sku.kind is not SkuKind.CARD_CODE or sku.archived_at is not None:
            return LotteryRefusal("prizeSkuId", "a prize SKU is a CARD_CODE SKU", "INVALID_FOR_KIND")
    seed = secrets.token_bytes(SEED_BYTES)
    lottery = Lottery(
        name=name, channel_id=channel.id, opens_at=command.opens_at, closes_at=command.closes_at,
        draw_at=command.draw_at, winners=command.winners, per_buyer_limit=command.per_buyer_limit,
        campaign_id=command.campaign_id, prize_sku_id=command.prize_sku_id, status=OPEN, entry_count=0,
        seed_ciphertext=b"", commitment=commitment(seed), created_by=actor, created_at=now,
    )
    session.add(lottery)
    await session.flush()
    lottery.seed_ciphertext = seeds.seal(seed.hex(), context=_context(lottery.id))
    # The draw is work that must happen however many processes restart: the durable queue.
    await jobs.enqueue(session, LOTTERY_DRAW, f"lottery-draw:{lottery.id}", now=now,
                       payload={"lottery": lottery.id}, delay=max((command.draw_at - now).total_seconds(), 0.0))
    await session.flush()
    return lottery


@dataclass(frozen=True, slots=True)
class Entered:
    entry: LotteryEntry
    token: str  # shown once: it reads the entry and its prize


async def enter(
    session: AsyncSession, risk: RiskCheck | None, lottery_id: int, buyer: Buyer, client_ip: str | None,
    now: datetime, *, public: bool, reads: AsyncSession | None = None,
) -> Entered | LotteryRefusal:
    """One entry for a buyer (canonical contacts), or why not. `public`: a caller from the
    public, whose address counts as a buyer when it gives nothing else. `reads`: a session
    beside the entry's for the lottery and the risk check, so that they do not hold its write
    transaction open (on SQLite, the writer lock) across a Redis round trip."""
    reads = reads or session
    lottery = await reads.get(Lottery, lottery_id)
    if lottery is None:
        return LotteryRefusal("lotteryId", "no such lottery", "NOT_FOUND")
    if lottery.status != OPEN or not lottery.opens_at <= now < lottery.closes_at:
        return LotteryRefusal("lotteryId", "the lottery is not taking entries now", "LOTTERY_CLOSED")
    channel = await reads.get(Channel, lottery.channel_id)
    assert channel is not None
    if risk is not None:
        facts = Facts(
            channel=channel.code, at=now, amount=Money(0, channel.currency), quantities={}, client_ip=client_ip,
            device_id=buyer.device_id, phone=buyer.phone, email=buyer.email, account=buyer.email,
            coupon=f"lottery:{lottery.id}",
        )
        verdict, _ = await risk.screen(reads, facts)
        if verdict.decision is Decision.REJECT:
            return LotteryRefusal(None, "this entry cannot be accepted; contact the shop if you think this is a mistake",
                                  "RISK_REJECTED")
    who = Identity(phone=buyer.phone, email=buyer.email, device=buyer.device_id, account=None,
                   address=client_ip if public else None)
    scope = f"lottery:{lottery.id}"
    counted = [Tally(scope, identity, 1, lottery.per_buyer_limit) for identity in who.buyers()]
    if counted and isinstance(await tallies.take(session, counted), Tally):
        entries = "entry" if lottery.per_buyer_limit == 1 else "entries"
        return LotteryRefusal("buyer", f"at most {lottery.per_buyer_limit} {entries} per buyer", "ENTRY_LIMIT")
    number = await session.scalar(
        update(Lottery).where(Lottery.id == lottery.id, Lottery.status == OPEN)
        .values(entry_count=Lottery.entry_count + 1).returning(Lottery.entry_count)
        .execution_options(synchronize_session=False)
    )
    if number is None:
        return LotteryRefusal("lotteryId", "the lottery is not taking entries now", "LOTTERY_CLOSED")
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    entry = LotteryEntry(
        lottery_id=lottery.id, number=number, token_digest=token_digest(token), buyer_phone=buyer.phone,
        buyer_email=buyer.email, device_id=buyer.device_id, client_ip=client_ip, status=ENTERED, created_at=now,
    )
    session.add(entry)
    await session.flush()
    return Entered(entry, token)


class PrizesShort(Exception):
    """Fewer prize codes in stock than winners: the draw waits (rolled back) for an import."""


async def draw(session: AsyncSession, seeds: SecretBox, lottery_id: int, now: datetime) -> list[int] | None:
    """Draw the lottery if it is due and not drawn; the winning entry numbers, or None when
    there was nothing to do (not due, drawn already, or drawn by another meanwhile)."""
    drawn = (await session.execute(
        update(Lottery).where(Lottery.id == lottery_id, Lottery.status == OPEN, Lottery.draw_at <= now)
        .values(status=DRAWN, drawn_at=now).returning(Lottery.entry_count)
        .execution_options(synchronize_session=False)
    )).first()
    if drawn is None:
        return None
    lottery = await session.get_one(Lottery, lottery_id, populate_existing=True)
    seed = bytes.fromhex(seeds.open(lottery.seed_ciphertext, context=_context(lottery.id)))
    numbers = [int(n) for n in winners(seed, label(lottery.id), [str(n) for n in range(1, drawn[0] + 1)], lottery.winners)]
    prizes = await _prizes(session, seeds, lottery, len(numbers), now)
    for number, (sealed, code_id) in zip(numbers, prizes, strict=True):
        await session.execute(
            update(LotteryEntry).where(LotteryEntry.lottery_id == lottery.id, LotteryEntry.number == number)
            .values(status=WON, prize_ciphertext=sealed, prize_code_id=code_id, decided_at=now)
            .execution_options(synchronize_session=False)
        )
    await session.execute(
        update(LotteryEntry).where(LotteryEntry.lottery_id == lottery.id, LotteryEntry.status == ENTERED)
        .values(status=LOST, decided_at=now).execution_options(synchronize_session=False)
    )
    lottery.revealed_seed = seed.hex()
    await session.flush()
    return numbers


async def _prizes(
    session: AsyncSession, seeds: SecretBox, lottery: Lottery, count: int, now: datetime,
) -> list[tuple[bytes, int | None]]:
    """Each winner's prize, sealed for the entry: a new single-use coupon code, or a card code
    taken from the prize SKU's pool (SOLD to the entry)."""
    if count == 0:
        return []
    context = _context(lottery.id)
    if lottery.campaign_id is not None:
        codes = await generate_codes(session, lottery.campaign_id, count, now=now)
        return [(seeds.seal(code, context=context), None) for code in codes]
    taken = list(await session.scalars(
        select(CardCode.id).where(
            CardCode.sku_id == lottery.prize_sku_id, CardCode.status == CodeStatus.AVAILABLE,
        ).order_by(CardCode.id).limit(count).with_for_update(skip_locked=True)
    ))
    if len(taken) < count:
        raise PrizesShort(f"lottery {lottery.id}: {len(taken)} prize codes for {count} winners")
    await session.execute(
        update(CardCode).where(CardCode.id.in_(taken)).values(status=CodeStatus.SOLD)
        .execution_options(synchronize_session=False)
    )
    rows = {row.id: row for row in await session.scalars(select(CardCode).where(CardCode.id.in_(taken)))}
    return [
        (seeds.seal(seeds.open(rows[i].secret_ciphertext, context=str(rows[i].sku_id).encode()), context=context), i)
        for i in taken
    ]


def prize_of(seeds: SecretBox, entry: LotteryEntry) -> str | None:
    if entry.prize_ciphertext is None:
        return None
    return seeds.open(entry.prize_ciphertext, context=_context(entry.lottery_id))


def next_check(lottery: Lottery, now: datetime) -> float:
    """Seconds until the lottery is due (a job woken early waits again)."""
    return max((lottery.draw_at - now) / timedelta(seconds=1), 0.05)
