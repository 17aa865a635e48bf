"""The simulated supplier's own promises: repeatable with a seed, bounded, controllable."""

from __future__ import annotations

import time

import httpx
from asgi_lifespan import LifespanManager

from domain.money import Money
from suppliers import signing
from suppliers.base import Outcome, TopUp
from suppliers.sim_state import Faults, Ledger
from suppliers.simulator import create_simulator
from tests.suppliers.conftest import RigFactory


def topup(request_id: str) -> TopUp:
    return TopUp(request_id, "QQ-COIN-50", "13800138000", 1, Money.of("1.00"))


def outcomes(seed: int) -> list[Outcome]:
    ledger = Ledger(Money.of("1000.00"), seed=seed)
    faults = Faults(mode="sync", fail_rate=0.5)
    return [ledger.receive(topup(f"R{n}"), faults)[0].outcome for n in range(40)]


def test_one_seed_gives_one_sequence_of_outcomes() -> None:
    first, again, other = outcomes(11), outcomes(11), outcomes(12)

    assert first == again
    assert first != other
    assert {Outcome.SUCCEEDED, Outcome.FAILED} == set(first)


def test_the_books_keep_the_newest_submissions_and_every_pending_one() -> None:
    ledger = Ledger(Money.of("1000.00"), max_submissions=3)
    ledger.receive(topup("PENDING-1"), Faults(mode="async"))
    for n in range(5):
        ledger.receive(topup(f"SETTLED-{n}"), Faults(mode="sync"))

    assert [s.topup.request_id for s in ledger.all()] == ["PENDING-1", "SETTLED-3", "SETTLED-4"]
    assert ledger.balance == Money.of("994.00")


async def test_faults_change_at_runtime_all_or_nothing(supplier: RigFactory) -> None:
    async with supplier(mode="sync") as rig:
        changed = await rig.faults(fail_products=["GONE"], latency_ms=5, balance="20.00")
        refused = [
            (r.status_code, r.json()["message"])
            for r in [
                await rig.control.post("/control", json={"fail_rate": 2}),
                await rig.control.post("/control", json={"latency_ms": 1, "surprise": True}),
                await rig.control.post("/control", json={"mode": "later"}),
                await rig.control.post("/control", json={"server_error": ["after"]}),
                await rig.control.post("/control", json={"balance": 20}),
                await rig.control.post("/control", content=b"[1]"),
            ]
        ]
        after = (await rig.control.get("/control")).json()

        assert changed == after == {
            "mode": "sync", "latency_ms": 5, "jitter_ms": 0, "callback_delay_ms": 50,
            "fail_rate": 0.0, "fail_all": False, "fail_products": ["GONE"], "fail_accounts": [],
            "answer_after_ms": 0, "server_error": "off", "answer_twice": False,
            "bad_signature": False, "balance": "20.00", "currency": "CNY",
        }
        assert refused == [
            (400, "fail_rate is a number from 0 to 1"),
            (400, "no fault named 'surprise'"),
            (400, "mode is sync or async"),
            (400, "server_error is off, before or after"),
            (400, 'balance is a decimal string, e.g. "1000.00"'),
            (400, "send a JSON object of the settings to change"),
        ]
        assert await rig.adapter.balance() == Money.of("20.00")


async def test_an_unsigned_or_malformed_submission_is_refused() -> None:
    app = create_simulator("sim-secret")
    async with LifespanManager(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        unsigned = await client.post("/topups", json={"request_id": "X"})
        body = b'{"request_id": "X", "product": "P", "account": "A", "quantity": 0}'
        malformed = await client.post(
            "/topups", content=body,
            headers={signing.HEADER: signing.sign("sim-secret", body, time.time())},
        )
        submissions = (await client.get("/control/submissions")).json()

    assert [(r.status_code, r.json()) for r in (unsigned, malformed)] == [
        (401, {"error": "BAD_SIGNATURE", "message": "no X-Supplier-Signature header"}),
        (400, {"error": "BAD_REQUEST", "message": "quantity must be a positive whole number"}),
    ]
    assert submissions == []
