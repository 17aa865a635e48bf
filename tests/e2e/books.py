"""The shop's books read straight from the database, and what must hold in them whatever
happened on the way: a balanced ledger, each line posted as its outcome says, and stock
that agrees with the codes, serial uses and counters the orders hold or bought.

End-to-end tests that crash or race gateways check these after the dust settles: the
answers the clients got could agree with each other and the books still be wrong.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select

from domain.catalog import CodeStatus, SkuKind
from domain.ledger import Account, Kind
from domain.orders import OrderStatus
from models import (
    Allocation,
    BlindBoxItem,
    BundleItem,
    CardCode,
    LedgerEntry,
    LedgerTransaction,
    Order,
    OrderLine,
    Refund,
    Sku,
    StockLevel,
)
from services.core.database import Database

DELIVERED, REFUNDED = "DELIVERED", "REFUNDED"
# Orders whose stock is given back: they hold nothing once they end.
RELEASED_STATUSES = {OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED}


@dataclass(frozen=True)
class Stock:
    """What the pool held at a moment: uses left per code, and (on hand, reserved) per counter."""

    uses: dict[int, int]  # code id -> uses left (1 for a fresh card code)
    codes_by_sku: dict[int, set[int]]
    counters: dict[int, tuple[int, int]]


async def stock(db: Database) -> Stock:
    async with db.fresh_sessions() as session:
        codes = (await session.execute(
            select(CardCode.id, CardCode.sku_id, CardCode.uses_left, CardCode.status))).all()
        counters = (await session.execute(
            select(StockLevel.sku_id, func.sum(StockLevel.on_hand), func.sum(StockLevel.reserved)).group_by(StockLevel.sku_id))).all()
    assert all(status is CodeStatus.AVAILABLE for *_, status in codes), "take the snapshot before selling"
    by_sku: dict[int, set[int]] = defaultdict(set)
    for code_id, sku_id, _, _ in codes:
        by_sku[sku_id].add(code_id)
    return Stock({code_id: uses for code_id, _, uses, _ in codes}, dict(by_sku),
                 {sku_id: (on_hand, reserved) for sku_id, on_hand, reserved in counters})


async def assert_ledger_balanced(db: Database) -> None:
    """Every ledger transaction has postings, in one currency, summing to zero."""
    async with db.fresh_sessions() as session:
        transactions = set(await session.scalars(select(LedgerTransaction.id)))
        sums = (await session.execute(
            select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount_fen),
                   func.count(func.distinct(LedgerEntry.currency)))
            .group_by(LedgerEntry.transaction_id))).all()
    assert {tx for tx, _, _ in sums} == transactions, "a ledger transaction without postings"
    unbalanced = [(tx, total, currencies) for tx, total, currencies in sums if total != 0 or currencies != 1]
    assert unbalanced == [], unbalanced


async def assert_lines_posted(db: Database) -> None:
    """A delivered line has exactly one delivery posting set, whose CHANNEL posting is what the
    buyer paid for it, and no reversal; a refunded line nets to nothing (a delivery it had is
    reversed exactly); any other line has no postings at all."""
    async with db.fresh_sessions() as session:
        lines = {line.id: line for line in await session.scalars(select(OrderLine))}
        postings = (await session.execute(
            select(LedgerEntry.line_id, LedgerTransaction.key, LedgerTransaction.kind, LedgerEntry.account,
                   LedgerEntry.amount_fen)
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .where(LedgerEntry.line_id.is_not(None), LedgerEntry.kind.in_((Kind.DELIVERY, Kind.REFUND))))).all()
    accounts: dict[int, dict[tuple[Kind, str], Counter[Account]]] = defaultdict(lambda: defaultdict(Counter))
    net: dict[int, Counter[Account]] = defaultdict(Counter)
    for line_id, key, kind, account, amount in postings:
        accounts[line_id][(kind, key)][account] += 1
        net[line_id][account] += amount
    one_set = {Account.CHANNEL: 1, Account.SUPPLIER: 1, Account.COMMISSION: 1, Account.MARGIN: 1}
    wrong: list[tuple[int, str | None, object]] = []
    for line_id, line in lines.items():
        posted = accounts[line_id]
        delivery, reversal = (Kind.DELIVERY, f"delivery:{line_id}"), (Kind.REFUND, f"refund:{line_id}")
        if line.outcome == DELIVERED:
            paid = line.unit_price_fen * line.quantity
            if set(posted) != {delivery} or posted[delivery] != one_set or net[line_id][Account.CHANNEL] != paid:
                wrong.append((line_id, line.outcome, {k: dict(v) for k, v in posted.items()}))
        elif line.outcome == REFUNDED:
            if set(posted) not in (set(), {delivery, reversal}) or any(net[line_id].values()):
                wrong.append((line_id, line.outcome, {k: dict(v) for k, v in posted.items()}))
        elif posted:
            wrong.append((line_id, line.outcome, {k: dict(v) for k, v in posted.items()}))
    assert wrong == [], wrong


async def assert_refunds_match_lines(db: Database) -> None:
    """Each order that refunded lines owes back exactly what those lines cost, once."""
    async with db.fresh_sessions() as session:
        refunded = (await session.execute(
            select(OrderLine.order_id, func.sum(OrderLine.unit_price_fen * OrderLine.quantity))
            .where(OrderLine.outcome == REFUNDED).group_by(OrderLine.order_id))).all()
        owed = (await session.execute(
            select(Refund.order_id, Refund.amount_fen).where(Refund.key.like("order:%")))).all()
    assert sorted(owed) == sorted((order_id, int(amount)) for order_id, amount in refunded)


async def assert_stock_consistent(db: Database, before: Stock) -> None:
    """Stock agrees with what the orders hold and bought, against the snapshot `before` any
    order was placed:

    - a card code is SOLD to exactly one delivered line (one SOLD allocation), RESERVED for
      exactly one line that still holds it, or AVAILABLE and nobody's;
    - a serial's uses left plus the uses held or sold equal what it had, so no use is sold
      twice and none is lost;
    - a counter's on hand fell by the units sold, and its reserved is what lines hold;
    - what a line holds follows its outcome: a delivered line's units are sold (as many as it
      bought), a released or refunded line holds nothing (but a bundle's top-up that succeeded
      before another failed stays sold: the supplier credited it), an open line holds."""
    async with db.fresh_sessions() as session:
        codes = {row.id: row for row in await session.scalars(select(CardCode))}
        allocations = (await session.execute(
            select(Allocation.line_id, Allocation.sku_id, Allocation.code_id, Allocation.units, Allocation.state,
                   Allocation.source))).all()
        lines = {line.id: line for line in await session.scalars(select(OrderLine))}
        statuses = dict((await session.execute(select(Order.id, Order.status))).all())
        kinds = dict((await session.execute(select(Sku.id, Sku.kind))).all())
        components = (await session.execute(
            select(BundleItem.bundle_sku_id, BundleItem.component_sku_id, BundleItem.quantity))).all()
        counters = {sku_id: (on_hand, reserved) for sku_id, on_hand, reserved in await session.execute(
            select(StockLevel.sku_id, func.sum(StockLevel.on_hand), func.sum(StockLevel.reserved)).group_by(StockLevel.sku_id))}
    assert set(codes) == set(before.uses), "codes appeared or vanished"
    wrong: list[object] = []

    # What each line holds follows its outcome and its order's status.
    for line_id, sku_id, code_id, _, state, source in allocations:
        line = lines[line_id]
        status = statuses[line.order_id]
        if line.outcome == DELIVERED:
            expected = {"SOLD"}
        elif line.outcome == REFUNDED:
            credited = source == "COUNTER" and kinds[line.sku_id] is SkuKind.BUNDLE
            expected = {"RELEASED", "SOLD"} if credited else {"RELEASED"}
        elif status in RELEASED_STATUSES:
            expected = {"RELEASED"}
        else:
            expected = {"HELD", "PRESALE"}
        if state not in expected:
            wrong.append(("allocation", line_id, sku_id, code_id, state, line.outcome, status.value))

    # A delivered line sold exactly what it bought, of each SKU it draws on.
    per_bundle: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for bundle, component, quantity in components:
        per_bundle[bundle].append((component, quantity))
    sold_to: dict[int, Counter[int]] = defaultdict(Counter)
    for line_id, sku_id, _, units, state, _ in allocations:
        if state == "SOLD":
            sold_to[line_id][sku_id] += units
    for line in lines.values():
        if line.outcome == DELIVERED:
            bought = Counter({sku_id: line.quantity * per
                              for sku_id, per in per_bundle.get(line.sku_id, [(line.sku_id, 1)])})
            if sold_to[line.id] != bought:
                wrong.append(("line sold", line.id, dict(sold_to[line.id]), dict(bought)))

    # Card codes: each in one state, held or sold by one line.
    by_code: dict[int, Counter[str]] = defaultdict(Counter)
    for _, _, code_id, _, state, source in allocations:
        if source == "CODE":
            by_code[code_id][state] += 1
    for code_id, code in codes.items():
        if kinds[code.sku_id] is not SkuKind.CARD_CODE:
            continue
        held = by_code[code_id]
        if code.status is CodeStatus.SOLD:
            ok = (held["SOLD"], held["HELD"]) == (1, 0) and lines[code.order_line_id or 0].outcome == DELIVERED
        elif code.status is CodeStatus.RESERVED:
            ok = (held["SOLD"], held["HELD"]) == (0, 1) and code.order_line_id is not None
        else:
            ok = (held["SOLD"], held["HELD"]) == (0, 0) and code.order_line_id is None
        if not ok:
            wrong.append(("code", code_id, code.status.value, dict(held)))

    # Serials: every use is left, held or sold, once.
    taken: Counter[int] = Counter()
    for _, _, code_id, units, state, source in allocations:
        if source == "SERIAL" and state in ("HELD", "SOLD"):
            taken[code_id] += units
    for code_id, code in codes.items():
        if kinds[code.sku_id] is not SkuKind.SERIAL:
            continue
        if code.uses_left < 0 or code.uses_left + taken[code_id] != before.uses[code_id]:
            wrong.append(("serial", code_id, code.uses_left, taken[code_id], before.uses[code_id]))

    # Counters: on hand less what was sold, reserved what is held.
    sold: Counter[int] = Counter()
    held_units: Counter[int] = Counter()
    for _, sku_id, _, units, state, source in allocations:
        if source == "COUNTER":
            if state == "SOLD":
                sold[sku_id] += units
            elif state == "HELD":
                held_units[sku_id] += units
    for sku_id, now in counters.items():
        expected_counter = (before.counters[sku_id][0] - sold[sku_id], held_units[sku_id])
        if now != expected_counter:
            wrong.append(("counter", sku_id, now, expected_counter))
    assert wrong == [], wrong[:20]


async def expected_figures(db: Database, before: Stock) -> dict[str, tuple[int, int]]:
    """What a catalog should show of each SKU, by SKU code: (available, reserved), worked out
    from what each SKU had `before` and the units orders hold or bought since (their
    allocations), independently of how the gateway computes it. A bundle is available as
    often as its scarcest component allows and reserves nothing of its own."""
    async with db.fresh_sessions() as session:
        skus = {sku_id: (code, kind)
                for sku_id, code, kind in await session.execute(select(Sku.id, Sku.code, Sku.kind))}
        taken = (await session.execute(
            select(Allocation.sku_id, Allocation.state, func.sum(Allocation.units))
            .where(Allocation.state.in_(("HELD", "SOLD"))).group_by(Allocation.sku_id, Allocation.state))).all()
        components = (await session.execute(
            select(BundleItem.bundle_sku_id, BundleItem.component_sku_id, BundleItem.quantity))).all()
        box_items = (await session.execute(select(BlindBoxItem.box_sku_id, BlindBoxItem.item_sku_id))).all()
    had: Counter[int] = Counter()
    for sku_id, ids in before.codes_by_sku.items():
        serial = skus[sku_id][1] is SkuKind.SERIAL
        had[sku_id] += sum(before.uses[code_id] for code_id in ids) if serial else len(ids)
    for sku_id, (on_hand, _) in before.counters.items():
        had[sku_id] += on_hand
    held: Counter[int] = Counter()
    gone: Counter[int] = Counter()
    for sku_id, state, units in taken:
        gone[sku_id] += int(units)
        if state == "HELD":
            held[sku_id] += int(units)
    figures = {sku_id: (had[sku_id] - gone[sku_id], held[sku_id]) for sku_id in skus}
    parts: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for bundle, component, quantity in components:
        parts[bundle].append((component, quantity))
    for bundle, pieces in parts.items():
        figures[bundle] = (min(figures[component][0] // quantity for component, quantity in pieces), 0)
    # A blind box sells one unit of whichever item is drawn: as often as its items have units.
    boxes: dict[int, list[int]] = defaultdict(list)
    for box, item in box_items:
        boxes[box].append(item)
    for box, items in boxes.items():
        figures[box] = (sum(figures[item][0] for item in items), 0)
    return {skus[sku_id][0]: figure for sku_id, figure in figures.items()}
