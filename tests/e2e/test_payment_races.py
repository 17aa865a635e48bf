"""Two gateway processes on PostgreSQL and Redis: a payment racing a cancel, or the expiry,
ends exactly one way, and the money is never lost.

Each order is paid with payOrder through one gateway while the payment provider's signed
notification of the same payment reaches the other, and its buyer cancels through the other
gateway, or both gateways' expiry sweeps reach its deadline. Whichever takes the order's lock first
decides: the order is PAID with that payment and owes nothing, or it is CANCELLED or EXPIRED,
gave its stock back, and owes exactly that payment back once (Order.refunds). The books are
read afterwards: a balanced ledger whose refunds payable are the payments owed, and stock
that agrees with the orders that hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from domain.ledger import Account, Kind
from domain.orders import OrderStatus
from models import LedgerEntry, Order, OrderEvent, Refund
from services.core.database import Database
from services.payments import notifications
from tests.e2e import books
from tests.e2e.server import Server, running_gateways
from tests.e2e.shop import ShopKeys, StockedSku, migrated_database, order_input, shop_settings, stock_shop
from tests.support import TEST_REDIS_URL, require_redis, without_cost

pytestmark = pytest.mark.e2e

BUDGET_SECONDS = 60
PLACE = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number expiresAt total { amount currency } } accessToken userErrors { code } }
}
"""
PAY = """
mutation Pay($id: ID!, $reference: String!) {
  payOrder(orderId: $id, paymentReference: $reference) { userErrors { code } }
}
"""
CANCEL = """
mutation Cancel($id: ID!) { cancelOrder(orderId: $id) { userErrors { code } } }
"""
SEEN = """
query Seen($id: ID!) {
  order(id: $id) { status paymentReference total { amount } refunds { amount { amount } status reference } }
}
"""
BUYER = {"phone": "13800138000", "rechargeAccount": "qq:10001"}
WEBHOOK_SECRET = "payment-races-webhook-secret"


@dataclass
class Racecourse:
    """Two gateways on one database and one Redis, and the test's own view of the database."""

    gateways: list[Server]
    db: Database
    keys: ShopKeys
    http: httpx.AsyncClient
    coins: StockedSku
    video: StockedSku
    before: books.Stock

    async def gql(self, via: int, query: str, variables: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        answer = await self.http.post(f"{self.gateways[via % 2].url}/graphql",
                                      json={"query": query, "variables": variables}, headers=headers)
        assert answer.status_code == 200, answer.text
        return without_cost(answer.json())

    async def place(self, via: int) -> dict[str, Any]:
        answer = await self.gql(via, PLACE, {"input": order_input((self.coins, 1), (self.video, 1), buyer=BUYER)})
        placed = answer["data"]["placeOrder"]
        assert placed["userErrors"] == [], answer
        return {**placed["order"], "token": placed["accessToken"]}

    async def pay(self, via: int, order: dict[str, Any], reference: str) -> str:
        answer = await self.gql(via, PAY, {"id": order["id"], "reference": reference}, self.keys.admin)
        return ",".join(error["code"] for error in answer["data"]["payOrder"]["userErrors"])

    async def notify(self, via: int, order: dict[str, Any], reference: str) -> str:
        """The provider's signed notification of the payment: the status the webhook answers."""
        body = orjson.dumps({"id": f"ntf-{reference}", "orderNumber": order["number"], "paymentReference": reference,
                             "amount": order["total"]["amount"], "currency": order["total"]["currency"]})
        stamp = str(int(time.time()))
        headers = {"content-type": "application/json", "x-quanyi-timestamp": stamp,
                   "x-quanyi-signature": notifications.sign(WEBHOOK_SECRET.encode(), stamp, body)}
        answer = await self.http.post(f"{self.gateways[via % 2].url}/webhooks/payment", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["status"])

    async def cancel(self, via: int, order: dict[str, Any]) -> str:
        answer = await self.gql(via, CANCEL, {"id": order["id"]}, order["token"])
        return ",".join(error["code"] for error in answer["data"]["cancelOrder"]["userErrors"])

    async def seen(self, order: dict[str, Any]) -> dict[str, Any]:
        """The order as an operator reads it: status, the payment it took, what it owes back."""
        answer = await self.gql(0, SEEN, {"id": order["id"]}, self.keys.admin)
        return dict(answer["data"]["order"])

    def assert_clean_logs(self) -> None:
        for server in self.gateways:
            output = server.output()
            assert "Traceback" not in output and "unexpected error" not in output, output[-4000:]


@contextlib.asynccontextmanager
async def racecourse(folder: Path, env: dict[str, str]) -> AsyncIterator[Racecourse]:
    if TEST_REDIS_URL is None:  # collected only when it is set (tests/e2e/conftest.py)
        pytest.fail("set QUANYI_TEST_REDIS_URL: the two gateways share events and counters through Redis")
    await require_redis(TEST_REDIS_URL)
    async with migrated_database(folder) as url:
        settings = shop_settings(url)
        db = Database.connect(settings)
        try:
            keys, shelf = await stock_shop(db, settings)
            coins = await shelf.card_codes(40, price_fen=990)
            video = await shelf.counter(40)
            before = await books.stock(db)
            # Paid orders keep what they hold here: fulfilment, which sells it, has tests of its own.
            environment = {"QUANYI_BROKER_PREFIX": settings.broker_prefix, "QUANYI_WORKER": "0",
                           "QUANYI_PAYMENT_WEBHOOK_SECRET": WEBHOOK_SECRET, **env}
            logs = [folder / "a.log", folder / "b.log"]
            async with (
                running_gateways(url, settings.secret_key, logs, env=environment) as gateways,
                httpx.AsyncClient(timeout=BUDGET_SECONDS, limits=httpx.Limits(max_connections=64)) as http,
            ):
                yield Racecourse(gateways, db, keys, http, coins, video, before)
        finally:
            await db.dispose()


async def after(seconds: float, call: Awaitable[str]) -> str:
    await asyncio.sleep(max(0.0, seconds))
    return await call


async def test_a_payment_and_a_cancel_through_two_gateways_end_each_order_one_way(tmp_path: Path) -> None:
    env = {"QUANYI_EXPIRY_INTERVAL_SECONDS": "3600"}
    async with asyncio.timeout(BUDGET_SECONDS), racecourse(tmp_path, env) as race:
        # Given sixteen unpaid orders, placed through either gateway
        orders = await asyncio.gather(*(race.place(n) for n in range(16)))

        # When each is paid through one gateway, the provider's notification of that payment
        # reaches the other, and the buyer cancels through the other (the cancels spread over a
        # third of a second around the payments, so that each side wins some)
        async def race_one(n: int, order: dict[str, Any]) -> tuple[str, str, str]:
            reference = f"WX-CANCEL-RACE-{n}"
            paid, notified, cancelled = await asyncio.gather(
                after(0.1, race.pay(n, order, reference)),
                after(0.12, race.notify(n + 1, order, reference)),
                after(0.02 * n, race.cancel(n + 1, order)),
            )
            return paid, notified, cancelled

        answers = await asyncio.gather(*(race_one(n, order) for n, order in enumerate(orders)))

        # Then each order is either paid and owes nothing, or cancelled and owes its payment back once
        ended: Counter[str] = Counter()
        for n, (order, (paid, notified, cancelled)) in enumerate(zip(orders, answers, strict=True)):
            seen = await race.seen(order)
            reference = f"WX-CANCEL-RACE-{n}"
            owed = [(r["reference"], r["amount"]["amount"], r["status"]) for r in seen["refunds"]]
            if seen["status"] == "PAID":
                assert (seen["paymentReference"], owed, paid, cancelled) == (reference, [], "", "INVALID_STATE")
                assert notified in ("paid", "already_paid")
            else:
                assert (seen["status"], seen["paymentReference"], cancelled) == ("CANCELLED", None, ""), seen
                assert owed == [(reference, seen["total"]["amount"], "REQUESTED")]
                assert (paid, notified) == ("REFUND_REQUESTED", "refund_requested")
            assert await terminal_events(race.db, order["number"]) == (
                [OrderStatus.PAID] if seen["status"] == "PAID" else [OrderStatus.CANCELLED])
            ended[seen["status"]] += 1
        print(f"\na payment (payOrder and its notification) against cancelOrder on two gateways: {dict(ended)}")

        await assert_money_accounted(race, orders, "WX-CANCEL-RACE-")
        await books.assert_stock_consistent(race.db, race.before)
        await books.assert_ledger_balanced(race.db)
        race.assert_clean_logs()


async def test_a_payment_at_the_deadline_through_two_gateways_ends_each_order_one_way(tmp_path: Path) -> None:
    # Orders live two seconds; both gateways sweep for due orders twenty times a second.
    env = {"QUANYI_ORDER_TTL_SECONDS": "2", "QUANYI_EXPIRY_INTERVAL_SECONDS": "0.05"}
    async with asyncio.timeout(BUDGET_SECONDS), racecourse(tmp_path, env) as race:
        # Given twelve unpaid orders whose deadline is about to pass
        orders = await asyncio.gather(*(race.place(n) for n in range(12)))

        # When each is paid around its deadline (from 0.6 s before to 0.5 s after) through one
        # gateway, and the provider's notification of that payment reaches the other
        async def pay_near_deadline(n: int, order: dict[str, Any]) -> tuple[str, str]:
            deadline = datetime.fromisoformat(order["expiresAt"]).timestamp()
            at = deadline + (n - 6) * 0.1 - time.time()
            reference = f"WX-EXPIRY-RACE-{n}"
            paid, notified = await asyncio.gather(after(at, race.pay(n, order, reference)),
                                                  after(at + 0.01, race.notify(n + 1, order, reference)))
            return paid, notified

        answers = await asyncio.gather(*(pay_near_deadline(n, order) for n, order in enumerate(orders)))
        await until_none_pending(race.db)

        # Then each is either paid and owes nothing, or expired and owes its payment back once
        ended: Counter[str] = Counter()
        for n, (order, (paid, notified)) in enumerate(zip(orders, answers, strict=True)):
            seen = await race.seen(order)
            reference = f"WX-EXPIRY-RACE-{n}"
            owed = [(r["reference"], r["amount"]["amount"], r["status"]) for r in seen["refunds"]]
            if seen["status"] == "PAID":
                assert (seen["paymentReference"], owed, paid) == (reference, [], "")
                assert notified in ("paid", "already_paid")
            else:
                assert (seen["status"], seen["paymentReference"]) == ("EXPIRED", None), seen
                assert owed == [(reference, seen["total"]["amount"], "REQUESTED")]
                assert (paid, notified) == ("REFUND_REQUESTED", "refund_requested")
            assert await terminal_events(race.db, order["number"]) == (
                [OrderStatus.PAID] if seen["status"] == "PAID" else [OrderStatus.EXPIRED])
            ended[seen["status"]] += 1
        print(f"\na payment (payOrder and its notification) against expiry on two gateways: {dict(ended)}")

        await assert_money_accounted(race, orders, "WX-EXPIRY-RACE-")
        await books.assert_stock_consistent(race.db, race.before)
        await books.assert_ledger_balanced(race.db)
        race.assert_clean_logs()


async def terminal_events(db: Database, number: str) -> list[OrderStatus]:
    """How the order left PENDING_PAYMENT: exactly one transition, whoever won."""
    async with db.fresh_sessions() as session:
        return list(await session.scalars(
            select(OrderEvent.to_status).join(Order, Order.id == OrderEvent.order_id)
            .where(Order.number == number, OrderEvent.from_status == OrderStatus.PENDING_PAYMENT)))


async def until_none_pending(db: Database, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        async with db.fresh_sessions() as session:
            pending = await session.scalar(
                select(func.count()).select_from(Order).where(Order.status == OrderStatus.PENDING_PAYMENT))
        if not pending:
            return
        assert time.monotonic() < deadline, f"{pending} orders neither paid nor expired"
        await asyncio.sleep(0.1)


async def assert_money_accounted(race: Racecourse, orders: list[dict[str, Any]], prefix: str) -> None:
    """Every payment either paid its order or is owed back, once; the ledger's refunds payable
    are exactly the payments owed back, each posted once."""
    async with race.db.fresh_sessions() as session:
        paid = set(await session.scalars(select(Order.payment_reference).where(Order.payment_reference.is_not(None))))
        owed = list(await session.scalars(select(Refund.reference)))
        owed_fen = int(await session.scalar(select(func.coalesce(func.sum(Refund.amount_fen), 0))) or 0)
        payable = int(await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0))
            .where(LedgerEntry.account == Account.REFUNDS_PAYABLE)) or 0)
        postings = Counter(await session.scalars(
            select(LedgerEntry.order_id)
            .where(LedgerEntry.kind == Kind.UNUSABLE_PAYMENT, LedgerEntry.account == Account.BANK)))
    references = {f"{prefix}{n}" for n in range(len(orders))}
    assert len(owed) == len(set(owed)) and not paid & set(owed)
    assert paid | set(owed) == references
    assert -payable == owed_fen and sum(postings.values()) == len(owed) and set(postings.values()) <= {1}
