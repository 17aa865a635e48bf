"""Lotteries: operators create and may draw them; buyers enter and read their entry by token."""

from __future__ import annotations

from datetime import datetime

import strawberry
from sqlalchemy import select

from domain.access import Role, may_read_channel
from domain.draws import winners
from domain.orders import OrderInputError
from models import Channel
from models import Lottery as LotteryRow
from models import LotteryEntry as EntryRow
from resolvers.orders import BuyerInput
from schema.context import Info
from schema.errors import Forbidden, UserError
from schema.lotteries import Lottery, LotteryEntry
from schema.permissions import ADMIN_ONLY
from schema.relay import decode_pk
from services.core.secret_box import SecretBox
from services.lotteries import draw as lotteries
from services.orders.draft import Buyer, canonical_buyer


@strawberry.input
class CreateLotteryInput:
    name: str
    channel: str
    opens_at: datetime
    closes_at: datetime
    draw_at: datetime = strawberry.field(description="When the draw runs (on the job queue), at or after closesAt.")
    winners: int
    per_buyer_limit: int = strawberry.field(default=1, description=(
        "Entries per buyer: per phone, e-mail and device, each in its canonical form."
    ))
    campaign_id: strawberry.ID | None = strawberry.field(default=None, description="Prize: a single-use code of this campaign.")
    prize_sku_id: strawberry.ID | None = strawberry.field(default=None, description="Prize: one code of this CARD_CODE SKU.")


@strawberry.input
class EnterLotteryInput:
    lottery_id: strawberry.ID
    buyer: BuyerInput


@strawberry.type
class LotteryPayload:
    lottery: Lottery | None
    user_errors: list[UserError]


@strawberry.type
class EnterLotteryPayload:
    entry: LotteryEntry | None
    token: str | None = strawberry.field(description="Reads this entry and its prize (lotteryEntry); shown once.")
    user_errors: list[UserError]


def _seeds(info: Info) -> SecretBox:
    return info.context.seeds or SecretBox(info.context.settings.secret_key, info.context.settings.old_secret_keys)


def _published(row: LotteryRow) -> Lottery:
    winning = None
    if row.status == "DRAWN" and row.revealed_seed:
        entries = [str(n) for n in range(1, row.entry_count + 1)]
        winning = [int(n) for n in winners(bytes.fromhex(row.revealed_seed), lotteries.label(row.id), entries, row.winners)]
    return Lottery.from_model(row, winning)


def _refused(refusal: lotteries.LotteryRefusal) -> list[UserError]:
    return [UserError(field=refusal.field, message=refusal.message, code=refusal.code)]


@strawberry.type
class LotteryQuery:
    @strawberry.field(description="A lottery as published: open to anyone, so anyone can check its draw.")
    async def lottery(self, info: Info, id: strawberry.ID) -> Lottery | None:
        pk = decode_pk(id, "Lottery")
        async with info.context.db.fresh_sessions() as session:
            row = await session.get(LotteryRow, pk)
        return _published(row) if row is not None else None

    @strawberry.field(description="An entry, by the token enterLottery gave: its number, outcome and prize.")
    async def lottery_entry(self, info: Info, token: str) -> LotteryEntry | None:
        if not token.startswith(lotteries.TOKEN_PREFIX) or len(token) > 64:
            return None
        async with info.context.db.fresh_sessions() as session:
            entry = await session.scalar(select(EntryRow).where(EntryRow.token_digest == lotteries.token_digest(token)))
            row = await session.get(LotteryRow, entry.lottery_id) if entry is not None else None
        if entry is None or row is None:
            return None
        return LotteryEntry.from_model(entry, _published(row), lotteries.prize_of(_seeds(info), entry))


@strawberry.type
class LotteryMutation:
    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "Create a lottery; its seed's commitment is published at once and the draw is queued for drawAt."
    ))
    async def create_lottery(self, info: Info, input: CreateLotteryInput) -> LotteryPayload:
        command = lotteries.CreateLottery(
            name=input.name, channel=input.channel, opens_at=input.opens_at, closes_at=input.closes_at,
            draw_at=input.draw_at, winners=input.winners, per_buyer_limit=input.per_buyer_limit,
            campaign_id=decode_pk(input.campaign_id, "Campaign", field="campaignId") if input.campaign_id else None,
            prize_sku_id=decode_pk(input.prize_sku_id, "Sku", field="prizeSkuId") if input.prize_sku_id else None,
        )
        async with info.context.uow() as uow:
            made = await lotteries.create(uow.session, _seeds(info), command, info.context.principal.actor, info.context.now)
            if isinstance(made, lotteries.LotteryRefusal):
                await uow.rollback()
                return LotteryPayload(lottery=None, user_errors=_refused(made))
            uow.publish("jobs.ready", b"")
        return LotteryPayload(lottery=_published(made), user_errors=[])

    @strawberry.mutation(description=(
        "Enter a lottery: within its window, within the per-buyer limit, past the risk check. "
        "The token in the answer reads the entry (lotteryEntry) and, after the draw, its prize."
    ))
    async def enter_lottery(self, info: Info, input: EnterLotteryInput) -> EnterLotteryPayload:
        context = info.context
        pk = decode_pk(input.lottery_id, "Lottery", field="lotteryId")
        try:
            buyer = canonical_buyer(Buyer(
                phone=input.buyer.phone, email=input.buyer.email, device_id=input.buyer.device_id or context.device_id,
                recharge_account=input.buyer.recharge_account,  # not counted: checked as placeOrder checks it
            ))
        except OrderInputError as error:
            return EnterLotteryPayload(entry=None, token=None, user_errors=[
                UserError(field=error.field, message=error.message, code=error.code)])
        async with context.db.fresh_sessions() as session:
            row = await session.get(LotteryRow, pk)
            channel = await session.get(Channel, row.channel_id) if row is not None else None
        if row is None or channel is None:
            return EnterLotteryPayload(entry=None, token=None, user_errors=[
                UserError(field="lotteryId", message="no such lottery", code="NOT_FOUND")])
        principal = context.principal
        if not may_read_channel(principal, channel.code, public=channel.public):
            raise Forbidden(f"lottery of channel {channel.code!r} needs a key of that channel", field="lotteryId")
        public = principal.role is None or principal.role is Role.STOREFRONT
        async with context.uow() as uow, uow.fresh_reads() as reads:
            entered = await lotteries.enter(uow.session, context.risk, pk, buyer, context.client_ip, context.now,
                                            public=public, reads=reads)
            if isinstance(entered, lotteries.LotteryRefusal):
                await uow.rollback()
                return EnterLotteryPayload(entry=None, token=None, user_errors=_refused(entered))
            row = await uow.session.get_one(LotteryRow, pk, populate_existing=True)
            answer = LotteryEntry.from_model(entered.entry, _published(row), None)
        return EnterLotteryPayload(entry=answer, token=entered.token, user_errors=[])

    @strawberry.mutation(permission_classes=ADMIN_ONLY, description=(
        "Draw a lottery now, if its draw time has come and it is not drawn yet (the job queue does this on its own)."
    ))
    async def draw_lottery(self, info: Info, id: strawberry.ID) -> LotteryPayload:
        pk = decode_pk(id, "Lottery")
        async with info.context.uow() as uow:
            try:
                numbers = await lotteries.draw(uow.session, _seeds(info), pk, info.context.now)
            except lotteries.PrizesShort:
                await uow.rollback()
                return LotteryPayload(lottery=None, user_errors=[UserError(
                    field="id", message="fewer prize codes in stock than winners", code="OUT_OF_STOCK")])
            row = await uow.session.get(LotteryRow, pk, populate_existing=True)
        if row is None:
            return LotteryPayload(lottery=None, user_errors=[UserError(field="id", message="no such lottery", code="NOT_FOUND")])
        if numbers is None and row.status != "DRAWN":
            return LotteryPayload(lottery=_published(row), user_errors=[UserError(
                field="id", message="the draw time has not come", code="NOT_DUE")])
        return LotteryPayload(lottery=_published(row), user_errors=[])
