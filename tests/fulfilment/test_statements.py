"""What paying and fulfilling a top-up order costs the database, counted in statements."""

from __future__ import annotations

from tests.fulfilment.conftest import Fulfilling
from tests.fulfilment.fakes import FakeSupplier
from tests.support import StatementCounter

# The payment (its key looked up) included, and the worker's last claim that finds nothing.
# On PostgreSQL, statements sent through the driver count too: the payment is one statement
# (services/payments/pay_pg.py: the order paid, its event and its job), a claim is one, and
# a one-line top-up is fulfilled in two (services/fulfilment/fulfil_pg.py: the start with its
# task marked SUBMITTING, then the supplier's answer with everything it decides). On SQLite a
# claim first reads whether any job is due (an idle worker stays off the write lock), then
# picks the due jobs and leases exactly those, and the general path's statements follow
# (docs/scaling.md lists them all). One more, at most every ten seconds per process: which
# webhook endpoints listen (services/webhooks/audience.py); with none listening, the
# transitions queue nothing.
BUDGET = {"postgresql": 7, "sqlite": 36}


async def test_a_paid_top_up_is_delivered_within_its_statement_budget(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    database = fulfilling.worker._db  # the gateway's own engines, which the worker shares
    counter = StatementCounter()
    counter.attach(database.engine)
    if database.read_engine is not database.engine:
        counter.attach(database.read_engine)
    if database.driver is not None:
        counter.attach_driver(database.driver)
    order = await fulfilling.place(("GS-60", 1))

    async def pay_and_fulfil() -> None:
        await fulfilling.pay(order)
        while await fulfilling.worker.run_once():
            pass

    _, count = await counter.measure(pay_and_fulfil())

    assert (await fulfilling.status(order))["status"] == "DELIVERED"
    assert [t.request_id for t in fakes["sim-fast"].submissions] == [order["number"]]
    assert 0 < count <= BUDGET[database.engine.dialect.name], counter.seen
