"""A simulated supplier served over real HTTP, a gateway-side callback receiver, and the adapter.

Both run in this process under uvicorn on free ports; nothing here touches the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.money import Money
from suppliers.base import Result, SignatureError, TopUp
from suppliers.http import HttpSupplier
from suppliers.simulator import Simulator, create_simulator

SECRET = "sim-shared-secret-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """uvicorn on a free port until the block ends; requests still open are cut short."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass(frozen=True)
class Delivery:
    """One callback as the gateway received it: the raw request and what became of it."""

    headers: dict[str, str]
    body: bytes
    result: Result | None  # parsed when the signature was good
    rejected: str | None  # the SignatureError's reason otherwise


@dataclass
class Callbacks:
    """The gateway's side of `POST /webhooks/supplier/{code}`, as fulfilment will do it."""

    adapter: HttpSupplier | None = None
    received: list[Delivery] = field(default_factory=list)
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> Response:
        assert self.adapter is not None
        body = await request.body()
        headers = dict(request.headers)
        try:
            self.adapter.verify_signature(request.headers, body, datetime.now(UTC))
            delivery = Delivery(headers, body, self.adapter.parse_callback(body), None)
        except SignatureError as error:
            delivery = Delivery(headers, body, None, str(error))
        self.received.append(delivery)
        self._arrived.set()
        return Response(status_code=401 if delivery.rejected else 204)

    async def wait_for(self, count: int) -> list[Delivery]:
        """The first `count` deliveries, once they have come (within a generous bound)."""
        async with asyncio.timeout(10):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received[:count]


@dataclass
class Rig:
    adapter: HttpSupplier
    sim: Simulator
    url: str
    callback_url: str
    callbacks: Callbacks
    control: httpx.AsyncClient

    async def faults(self, **changes: Any) -> dict[str, Any]:
        response = await self.control.post("/control", json=changes)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def submissions(self) -> list[dict[str, Any]]:
        return list((await self.control.get("/control/submissions")).json())

    def topup(self, request_id: str, *, account: str = "13800138000", product: str = "QQ-COIN-50",
              face_value: str = "50.00", quantity: int = 1, callback: bool = True) -> TopUp:
        return TopUp(request_id, product, account, quantity, Money.of(face_value),
                     self.callback_url if callback else None)


RigFactory = Callable[..., contextlib.AbstractAsyncContextManager[Rig]]


@pytest.fixture
def supplier() -> RigFactory:
    """`async with supplier(mode="sync", ...) as rig`: a fresh simulator with those faults."""

    @contextlib.asynccontextmanager
    async def build(
        *, timeout_seconds: float = 5.0, balance: str = "1000.00", **faults: Any
    ) -> AsyncIterator[Rig]:
        app = create_simulator(SECRET, balance=Money.of(balance), seed=7, **faults)
        callbacks = Callbacks()
        receiver = Starlette(routes=[
            Route("/webhooks/supplier/{code}", callbacks.endpoint, methods=["POST"]),
        ])
        async with serving(app) as url, serving(receiver) as gateway_url:
            adapter = HttpSupplier("sim", url, SECRET, timeout_seconds=timeout_seconds)
            callbacks.adapter = adapter
            async with httpx.AsyncClient(base_url=url) as control:
                try:
                    yield Rig(adapter, app.state.simulator, url,
                              f"{gateway_url}/webhooks/supplier/sim", callbacks, control)
                finally:
                    await adapter.close()

    return build
