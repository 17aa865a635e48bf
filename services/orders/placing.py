"""Placing an order: idempotent, priced on the server, stock reserved in the same transaction."""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from domain.access import Principal
from domain.campaigns import same_coupon
from domain.catalog import SkuKind
from domain.limits import HoldLimit, Tally, breach_of
from domain.idempotency import REPLAY_EXPIRED, replayable_since
from domain.orders import LineRequest, OrderStatus
from domain.risk import Decision
from models import Order, OrderLine
from services.campaigns import redemption
from services.core.secret_box import SecretBox
from services.core.unit_of_work import UnitOfWork
from services.draws import boxes as boxes_
from services.draws.boxes import BoxWant
from services.inventory import quotas
from services.inventory.reservation import OutOfStock, Want, reserve
from services.inventory.sold_out import SoldOutGate
from services.orders import placement_pg, tallies
from services.orders.draft import (
    NOT_ENOUGH_STOCK,
    Buyer,
    Draft,
    KeyTaken,
    Placed,
    PlaceOrder,
    Refusal,
    SaleCheck,
    draft,
    limit_refusal,
    refused,
)
from services.orders.events import record_transition
from services.orders.terms import Terms
from services.risk.check import VERDICTS_TOPIC, RiskCheck, record_verdict

# What callers build a command from and get back, with place_order.
__all__ = ["Buyer", "PlaceOrder", "Placed", "Refusal", "place_order"]


def _order_number(now: datetime) -> str:
    return f"QY{now:%y%m%d}{secrets.randbelow(10**10):010d}"


RISK_REJECTED = Refusal(None, "this order cannot be accepted; contact the shop if you think this is a mistake", "RISK_REJECTED")


async def place_order(
    uow: UnitOfWork, command: PlaceOrder, principal: Principal, *, now: datetime, ttl: timedelta,
    risk: RiskCheck | None = None, review_ttl: timedelta | None = None, public_hold: HoldLimit | None = None,
    sales: SaleCheck | None = None, terms: Terms | None = None, gate: SoldOutGate | None = None,
    seeds: SecretBox | None = None,
) -> Placed:
    """Place an order; the risk check scores the attempt before any stock is reserved.

    Everything that only reads (channel, SKUs, prices, the risk check with its counters) runs
    before the order's write transaction begins, in a session of its own: on SQLite no other
    order waits behind a Redis round trip or the risk check's reads for the writer lock.
    With `terms` (the process's copy of channels, SKUs, prices and limits) those reads
    usually cost no statement at all.

    REJECT: no order, nothing reserved, the verdict stored as the record of the attempt.
    REVIEW: the order holds its stock in REVIEW until an operator decides (or review_ttl ends).
    Purchase and hold limits (`public_hold`: the hold caps of a caller from the public, see
    draft()) are counted in the write transaction, before quotas and stock. A scheduled sale
    (`sales`) refuses its SKU before the start, and an unregistered buyer, among the reads.

    On PostgreSQL, orders of codes and counters are written in one call of the placement
    function, or with a coupon in a few round trips (placement_pg.py); the rest, and SQLite,
    take the general path below. `gate`: the
    sold-out gate (services/inventory/sold_out.py), told when the database finds a SKU
    without stock, and of every key that placed an order. `seeds`: what opens a blind box's
    seed for its draws (none: boxes are out of stock).
    """
    since = time.time()
    driver = uow.driver()
    async with uow.fresh_reads() as reads:
        drafted = await draft(
            reads, command, now, risk, public_hold, sales, terms=terms, look_up_key=driver is None, gate=gate,
        )
    if isinstance(drafted, Placed):
        return drafted
    command = replace(command, buyer=drafted.buyer)  # stored and compared in canonical form
    if isinstance(drafted, Draft):
        # The coupon as the order records it: a generated code never in plain text.
        command = replace(command, coupon_code=drafted.coupon.tag if drafted.coupon is not None else None)
    if isinstance(drafted, KeyTaken):
        return await _answer_retry(uow, command, drafted.channel_id, drafted.lines, replayable_since(principal, now))
    sold_out: int | None = None
    if driver is not None and placement_pg.handles(drafted):
        try:
            written = await placement_pg.write(
                driver, drafted, command, principal.actor, _order_number(now), now=now, ttl=ttl, review_ttl=review_ttl,
            )
        except placement_pg.KeyTaken:
            since_for_guest = replayable_since(principal, now)
            return await _answer_retry(uow, command, drafted.channel_id, drafted.lines, since_for_guest)
        placed, sold_out = written.placed, written.sold_out
    else:
        placed, sold_out = await _write(
            uow, drafted, command, principal, now=now, ttl=ttl, review_ttl=review_ttl, seeds=seeds,
        )
    if gate is not None:
        if sold_out is not None:
            await gate.sold_out(drafted.channel_id, sold_out, since)
        if placed.created:
            await gate.placed.add(drafted.channel_id, drafted.key)
    return placed


async def _answer_retry(
    uow: UnitOfWork, command: PlaceOrder, channel_id: int, lines: list[LineRequest], since: datetime | None
) -> Placed:
    """The answer to an attempt whose key an order holds, read in the command's session.

    A guest's retry is answered only while its order is younger than `since` allows
    (domain/idempotency.py): the key is the secret that hands back the access token.
    """
    existing = await _existing(uow, channel_id, command.idempotency_key.strip())
    if existing is None:  # rolled back since: as a concurrent duplicate that lost
        return refused("idempotencyKey", "an order with this key is being placed; try again", "CONFLICT")
    if since is not None and existing.created_at < since:
        return refused("idempotencyKey", REPLAY_EXPIRED, "IDEMPOTENCY_KEY_EXPIRED")
    return await _replay(uow, existing, command, lines)


async def _write(
    uow: UnitOfWork, draft: Draft, command: PlaceOrder, principal: Principal, *,
    now: datetime, ttl: timedelta, review_ttl: timedelta | None, seeds: SecretBox | None = None,
) -> tuple[Placed, int | None]:
    """The order's write transaction: the verdict, the order, its quotas and its stock; with
    the SKU the database found without any stock, if that refused the order."""
    session = uow.session
    channel_id, currency, key, lines, position, skus = (
        draft.channel_id, draft.currency, draft.key, draft.lines, draft.position, draft.skus
    )
    units, total, verdict, facts = draft.units, draft.total, draft.verdict, draft.facts
    if verdict.decision is Decision.REJECT:
        record_verdict(session, verdict, facts, channel_id=channel_id, idempotency_key=key, order_id=None)
        uow.publish(VERDICTS_TOPIC, b"REJECT")  # no order event follows: the dashboard hears this
        return Placed(None, refusals=[RISK_REJECTED]), None

    coupon = draft.coupon
    order = Order(
        number=_order_number(now), channel_id=channel_id, idempotency_key=key,
        status=OrderStatus.PENDING_RISK, currency=currency, total_fen=total.minor,
        campaign_id=coupon.campaign_id if coupon else None, discount_fen=coupon.total if coupon else 0,
        buyer_phone=command.buyer.phone, buyer_email=command.buyer.email,
        recharge_account=command.buyer.recharge_account, device_id=command.buyer.device_id,
        coupon_code=command.coupon_code, client_ip=command.client_ip, placed_by=principal.actor,
        created_at=now, updated_at=now,
    )
    session.add(order)
    try:
        # The unique (channel, key) index decides between concurrent duplicates, here,
        # before any stock is touched: the loser waits for the winner's commit, then fails.
        await session.flush()
    except IntegrityError:
        await uow.rollback()
        return await _answer_retry(uow, command, channel_id, lines, replayable_since(principal, now)), None
    record_transition(session, order, None, OrderStatus.PENDING_RISK, principal.actor, "placed", now)

    discounts = coupon.discounts if coupon else [0] * len(lines)
    rows = [OrderLine(order_id=order.id, sku_id=line.sku_id, quantity=line.quantity, unit_price_fen=unit.minor,
                      discount_fen=off)
            for line, unit, off in zip(lines, units, discounts, strict=True)]
    session.add_all(rows)
    await session.flush()
    if draft.tallies:
        # The buyers' counts first (tallies.py): a refusal reserves nothing.
        taken = await tallies.take(session, draft.tallies)
        if isinstance(taken, Tally):
            await uow.rollback()
            return limit_refusal(breach_of(taken, draft.limits), lines, position), None
        order.buyer_tallies = taken
    if coupon is not None:
        # The coupon next, before quotas and stock (services/campaigns/redemption.py).
        spent = await redemption.redeem(session, coupon, order.id, now)
        if spent is not None:
            await uow.rollback()
            return refused("couponCode", spent.message, spent.code), None
    # Quotas, then stock, each in SKU order (see reserve()): concurrent orders naming the
    # same SKUs queue on their rows in one order instead of deadlocking.
    by_sku = sorted(zip(lines, rows, strict=True), key=lambda pair: pair[0].sku_id)
    over = await quotas.consume(session, channel_id, [quotas.Take(row.id, line.sku_id, line.quantity) for line, row in by_sku])
    if over is not None:
        sku_id = next(line.sku_id for line, row in by_sku if row.id == over)
        await uow.rollback()
        return refused(f"lines.{position[sku_id]}.quantity", "the channel's quota for this SKU is used up", "QUOTA_EXCEEDED"), None
    boxes = [BoxWant(row.id, skus[line.sku_id], line.quantity) for line, row in by_sku
             if skus[line.sku_id].kind is SkuKind.BLIND_BOX]
    try:
        reserved = await reserve(session, [Want(row.id, skus[line.sku_id], line.quantity) for line, row in by_sku
                                           if skus[line.sku_id].kind is not SkuKind.BLIND_BOX], now)
        if boxes:
            if seeds is None:
                raise OutOfStock(boxes[0].box.id, boxes[0].line_id)
            # Boxes after every other line: each unit is drawn over the pool items with
            # stock, its drawn unit reserved at once (services/draws/boxes.py). Only an order
            # holding no other stock may queue for a top-up counter (no deadlock between two).
            may_wait = len(boxes) == len(by_sku)
            for box in boxes:
                moved, holds_counter = await boxes_.draw(
                    session, seeds, box, order.id, order.number, now, may_wait=may_wait,
                )
                reserved.sku_ids |= moved
                may_wait = may_wait and not holds_counter
    except OutOfStock as error:
        sku_id = next(line.sku_id for line, row in by_sku if row.id == error.line_id)
        await uow.rollback()
        return refused(f"lines.{position[sku_id]}.quantity", NOT_ENOUGH_STOCK, "OUT_OF_STOCK"), error.sku_id if error.empty else None
    for row in rows:
        row.presale_quantity = reserved.presale.get(row.id, 0)

    record_verdict(session, verdict, facts, channel_id=channel_id, idempotency_key=key, order_id=order.id)
    if verdict.decision is Decision.REVIEW:
        order.status = OrderStatus.REVIEW
        order.expires_at = now + (review_ttl or ttl)
        rules = ", ".join(reason.rule for reason in verdict.reasons)
        record_transition(session, order, OrderStatus.PENDING_RISK, OrderStatus.REVIEW, "system", f"held for review: {rules}", now)
    else:
        order.status = OrderStatus.PENDING_PAYMENT
        order.expires_at = now + ttl
        record_transition(session, order, OrderStatus.PENDING_RISK, OrderStatus.PENDING_PAYMENT, "system", "no risk rules matched", now)
    await session.flush()
    changed = sorted(reserved.sku_ids | {line.sku_id for line in lines})
    return Placed(order, created=True, changed_skus=changed), None


async def _existing(uow: UnitOfWork, channel_id: int, key: str) -> Order | None:
    return await uow.session.scalar(
        select(Order).where(Order.channel_id == channel_id, Order.idempotency_key == key)
    )


async def _replay(uow: UnitOfWork, order: Order, command: PlaceOrder, lines: list[LineRequest]) -> Placed:
    """The order a key already placed, if this is a retry of the same request.

    A key sent again with other lines or another buyer is not a retry: answering it with
    the first order would tell a partner its new order was placed, and would hand a
    guest who guessed the key another buyer's order and its access token.
    """
    held = {
        sku_id: quantity
        for sku_id, quantity in await uow.session.execute(
            select(OrderLine.sku_id, OrderLine.quantity).where(OrderLine.order_id == order.id)
        )
    }
    buyer = command.buyer
    same = held == {line.sku_id: line.quantity for line in lines} and (
        order.buyer_phone, order.buyer_email, order.recharge_account
    ) == (buyer.phone, buyer.email, buyer.recharge_account) and same_coupon(order.coupon_code, command.coupon_code)
    if not same:
        return refused("idempotencyKey", "this key was already used for a different order", "IDEMPOTENCY_KEY_REUSED")
    return Placed(order)


