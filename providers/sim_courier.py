"""How the simulated providers deliver notifications: on the provider's retry schedule,
with the faults a real provider shows (duplicates, out-of-order arrival, lost deliveries).

A notification is delivered until the merchant answers that it handled it (`accepted`),
waiting the schedule's delays between attempts, like WeChat Pay (15s, 15s, 30s, 3m, …) and
Alipay (4m, 10m, 10m, 1h, …); simulators for tests and demos take a shorter schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import httpx

log = logging.getLogger("quanyi.payment_sim")

WECHATPAY_SCHEDULE = [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600]
ALIPAY_SCHEDULE = [240, 600, 600, 3600, 7200, 21600, 54000]
DEMO_SCHEDULE = [1, 2, 4, 8, 15, 30, 60]


@dataclass
class Faults:
    """Settable at start and through POST /control."""

    duplicates: int = 0  # extra copies of each notification after the first is accepted
    shuffle_ms: int = 0  # each notification waits a random 0..shuffle_ms first: arrival order is lost
    lose_first: int = 0  # the first n attempts of each notification are lost on the way
    amount_offset_fen: int = 0  # notifications report this much more than was paid (a provider's mistake)
    schedule: list[float] = field(default_factory=lambda: list(DEMO_SCHEDULE))
    drop_kinds: list[str] = field(default_factory=list)  # notifications of these kinds are never sent

    def update(self, changes: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"no fault named {name!r}")
            if name == "drop_kinds":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError("drop_kinds is a list of notification kinds")
            elif name == "schedule":
                if not isinstance(value, list) or not all(isinstance(v, int | float) and v >= 0 for v in value):
                    raise ValueError("schedule is a list of seconds")
            elif isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} is a whole number")
            elif name != "amount_offset_fen" and value < 0:
                raise ValueError(f"{name} is 0 or more")
        for name, value in changes.items():
            setattr(self, name, value)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Delivery:
    id: str
    kind: str
    url: str
    out_trade_no: str
    attempts: int = 0
    accepted: int = 0
    answers: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# Builds the request afresh for each attempt (a new signature time) and says whether the
# merchant's answer means "handled".
Attempt = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]
Accepted = Callable[[httpx.Response], bool]


class Courier:
    def __init__(self, faults: Faults, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.faults = faults
        self.deliveries: list[Delivery] = []
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._random = random.Random()

    def send(self, delivery: Delivery, attempt: Attempt, accepted: Accepted) -> None:
        if delivery.kind in self.faults.drop_kinds:
            return
        self.deliveries.append(delivery)
        del self.deliveries[:-10_000]
        task = asyncio.create_task(self._deliver(delivery, attempt, accepted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery, attempt: Attempt, accepted: Accepted) -> None:
        if self.faults.shuffle_ms:
            await asyncio.sleep(self._random.uniform(0, self.faults.shuffle_ms) / 1000)
        client = self._ensure_client()
        for wait in [0.0, *self.faults.schedule]:
            await asyncio.sleep(wait)
            delivery.attempts += 1
            if delivery.attempts <= self.faults.lose_first:
                continue
            if await self._try(delivery, client, attempt, accepted):
                break
        else:
            log.warning("notification %s to %s not accepted after %d attempts", delivery.id, delivery.url,
                        delivery.attempts)
            return
        for _ in range(self.faults.duplicates):
            await self._try(delivery, client, attempt, accepted)

    async def _try(self, delivery: Delivery, client: httpx.AsyncClient, attempt: Attempt, accepted: Accepted) -> bool:
        try:
            answer = await attempt(client)
        except httpx.HTTPError:
            delivery.answers.append(0)
            return False
        delivery.answers.append(answer.status_code)
        if accepted(answer):
            delivery.accepted += 1
            return True
        return False

    def _ensure_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self._transport, timeout=10.0)
        return self._client

    async def settle(self) -> None:
        """Wait for the deliveries under way (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None
