"""What paying and fulfilling a top-up order costs the database, counted in statements."""

from __future__ import annotations

from tests.fulfilment.conftest import Fulfilling
from tests.fulfilment.fakes import FakeSupplier
from tests.support import StatementCounter

# The payment (its key looked up) included, and the worker's last claim that finds nothing.
# A claim picks the due jobs and then leases exactly those (two statements; one when none is
# due); SQLite first reads whether any job is due (an idle worker stays off the write lock)
# and reads back what it inserted. The supplier's answer, the line's outcome, the order's final
# status and the job's completion share one transaction (docs/scaling.md lists them all).
# One more, at most every ten seconds per process: which webhook endpoints listen
# (services/webhooks/audience.py); with none listening, the transitions queue nothing.
BUDGET = {"postgresql": 32, "sqlite": 36}


async def test_a_paid_top_up_is_delivered_within_its_statement_budget(
    fulfilling: Fulfilling, fakes: dict[str, FakeSupplier]
) -> None:
    database = fulfilling.worker._db  # the gateway's own engines, which the worker shares
    counter = StatementCounter()
    counter.attach(database.engine)
    if database.read_engine is not database.engine:
        counter.attach(database.read_engine)
    order = await fulfilling.place(("GS-60", 1))

    async def pay_and_fulfil() -> None:
        await fulfilling.pay(order)
        while await fulfilling.worker.run_once():
            pass

    _, count = await counter.measure(pay_and_fulfil())

    assert (await fulfilling.status(order))["status"] == "DELIVERED"
    assert [t.request_id for t in fakes["sim-fast"].submissions] == [order["number"]]
    assert 0 < count <= BUDGET[database.engine.dialect.name], counter.seen
