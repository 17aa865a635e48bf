"""A simulated supplier: the signed JSON protocol of suppliers/wire.py, with faults to order.

    POST /topups                 submit (idempotent by request_id)
    GET  /topups/{request_id}    query
    GET  /balance                the prepaid balance top-ups are paid from
    GET  /control                the faults in force and the balance
    POST /control                change them: {"fail_all": true, "balance": "5.00"}
    GET  /control/submissions    every request received: request_id, product, masked account,
                                 times received, status, callbacks delivered

/control is unsigned: the simulator is a test and demo tool, listening on localhost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.money import Money, MoneyError
from suppliers import signing, wire
from suppliers.base import Outcome, SignatureError
from suppliers.sim_state import Faults, Ledger, ServerError, Submission

log = logging.getLogger("quanyi.supplier_sim")

_CALLBACK_ATTEMPTS = 3


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def _answer(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type="application/json")


class Simulator:
    def __init__(self, secret: str | bytes, faults: Faults, ledger: Ledger) -> None:
        signing.digest(secret, 0, b"")  # an empty secret is refused at start-up
        self.secret = secret
        self.faults = faults
        self.ledger = ledger
        self.client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def check(self, request: Request, payload: bytes) -> None:
        signing.verify(self.secret, request.headers, payload, time.time())

    def complete_later(self, submission: Submission) -> None:
        task = asyncio.create_task(self._complete(submission))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _complete(self, submission: Submission) -> None:
        await asyncio.sleep(self.faults.callback_delay_ms / 1000)
        submission.settled = True
        url = submission.topup.callback_url
        if url is None:
            return  # the client polls
        body = wire.result_body(submission.result())
        for _ in range(2 if self.faults.answer_twice else 1):
            if await self._deliver(url, body):
                submission.callbacks_sent += 1

    async def _deliver(self, url: str, body: bytes) -> bool:
        assert self.client is not None
        key = b"not-the-shared-secret" if self.faults.bad_signature else self.secret
        for attempt in range(_CALLBACK_ATTEMPTS):
            headers = {signing.HEADER: signing.sign(key, body, time.time()),
                       "Content-Type": "application/json"}
            with contextlib.suppress(httpx.HTTPError):
                if (await self.client.post(url, content=body, headers=headers)).is_success:
                    return True
            if attempt + 1 < _CALLBACK_ATTEMPTS:
                await asyncio.sleep(0.1 * 2**attempt)
        log.warning("callback to %s not delivered after %d attempts", url, _CALLBACK_ATTEMPTS)
        return False

    @contextlib.asynccontextmanager
    async def running(self, app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=5.0) as self.client:
            try:
                yield
            finally:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)


async def _submit(request: Request) -> Response:
    sim: Simulator = request.app.state.simulator
    body = await request.body()
    try:
        sim.check(request, body)
    except SignatureError as error:
        return _json({"error": "BAD_SIGNATURE", "message": str(error)}, 401)
    try:
        topup = wire.parse_topup(body)
    except wire.WireError as error:
        return _json({"error": "BAD_REQUEST", "message": str(error)}, 400)
    faults = sim.faults
    await asyncio.sleep(sim.ledger.jitter(faults))
    if faults.server_error is ServerError.BEFORE:
        return _json({"error": "INTERNAL", "message": "the supplier failed"}, 500)
    submission, new = sim.ledger.receive(topup, faults)
    if new and not submission.settled:
        sim.complete_later(submission)
    if faults.server_error is ServerError.AFTER:
        return _json({"error": "INTERNAL", "message": "the supplier failed"}, 500)
    if faults.answer_after_ms:
        await asyncio.sleep(faults.answer_after_ms / 1000)
    return _answer(wire.result_body(submission.result()), 422 if submission.refused else 200)


async def _query(request: Request) -> Response:
    sim: Simulator = request.app.state.simulator
    try:
        sim.check(request, request.scope.get("raw_path") or request.url.path.encode())
    except SignatureError as error:
        return _json({"error": "BAD_SIGNATURE", "message": str(error)}, 401)
    request_id = request.path_params["request_id"]
    await asyncio.sleep(sim.ledger.jitter(sim.faults))
    submission = sim.ledger.find(request_id)
    if submission is None:
        return _json({"request_id": request_id, "status": Outcome.NOT_FOUND.value,
                      "reference": None, "message": "no such request"}, 404)
    return _answer(wire.result_body(submission.result()))


async def _balance(request: Request) -> Response:
    sim: Simulator = request.app.state.simulator
    try:
        sim.check(request, request.scope.get("raw_path") or request.url.path.encode())
    except SignatureError as error:
        return _json({"error": "BAD_SIGNATURE", "message": str(error)}, 401)
    return _answer(wire.balance_body(sim.ledger.balance))


def _control_state(sim: Simulator) -> dict[str, Any]:
    return {**sim.faults.as_json(), "balance": str(sim.ledger.balance.amount),
            "currency": sim.ledger.balance.currency}


async def _control(request: Request) -> Response:
    sim: Simulator = request.app.state.simulator
    if request.method == "POST":
        try:
            changes = orjson.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of the settings to change")
            _apply(sim, changes)
        except (ValueError, MoneyError) as error:  # JSONDecodeError is a ValueError
            return _json({"error": "BAD_REQUEST", "message": str(error)}, 400)
    return _json(_control_state(sim))


def _apply(sim: Simulator, changes: dict[str, Any]) -> None:
    changes = dict(changes)
    amount = changes.pop("balance", None)
    currency = changes.pop("currency", sim.ledger.balance.currency)
    trial = Faults(**{k: v for k, v in vars(sim.faults).items()})
    trial.update(changes)  # all or nothing: a bad value changes no setting
    if amount is not None:
        if not isinstance(amount, str):
            raise ValueError("balance is a decimal string, e.g. \"1000.00\"")
        sim.ledger.balance = Money.of(amount, currency)
    sim.faults.update(changes)


async def _submissions(request: Request) -> Response:
    sim: Simulator = request.app.state.simulator
    return _json([submission.as_json() for submission in sim.ledger.all()])


def create_simulator(
    secret: str | bytes,
    *,
    balance: Money | None = None,
    seed: int | None = None,
    max_submissions: int = 10_000,
    **faults: Any,
) -> Starlette:
    """The simulator app; `faults` are Faults fields (mode="sync", fail_rate=0.1, ...)."""
    settings = Faults()
    settings.update(faults)
    ledger = Ledger(balance or Money.of("100000.00"), seed=seed, max_submissions=max_submissions)
    sim = Simulator(secret, settings, ledger)
    app = Starlette(
        routes=[
            Route("/topups", _submit, methods=["POST"]),
            Route("/topups/{request_id:path}", _query, methods=["GET"]),
            Route("/balance", _balance, methods=["GET"]),
            Route("/control", _control, methods=["GET", "POST"]),
            Route("/control/submissions", _submissions, methods=["GET"]),
        ],
        lifespan=sim.running,
    )
    app.state.simulator = sim
    return app
