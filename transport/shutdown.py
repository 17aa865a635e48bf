"""Stopping without dropping work: what the gateway does between SIGTERM and its exit.

uvicorn, told to stop, closes its listening socket, waits for the HTTP requests under way,
closes WebSockets with 1012 and only then runs the application's shutdown. The gateway
wants to act first, so it hears the signal itself (chaining to the server's own handler):

1. `/readyz` answers 503 `draining`, so a load balancer sends nothing new;
2. every WebSocket is closed with 1001 ("going away"): clients reconnect to another
   gateway, as they would for any server that leaves; new WebSockets are refused;
3. the job worker claims nothing more;
4. then the server's own handler runs: no new connections, the requests under way complete.

The application's shutdown then gives the worker's runs what is left of the grace period
and gives back the jobs still running (services/core/worker.py). A second signal is handed
straight to the server (uvicorn: a second Ctrl-C forces the exit).

The signal is heard only when a server handles it (a callable handler is installed, as
uvicorn's is): in-process tests and tools keep the default behaviour.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

log = logging.getLogger("quanyi.shutdown")

SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Each step of draining is bounded, so a stuck client cannot hold the exit.
STEP_SECONDS = 2.0

Step = Callable[[], Awaitable[None]]


class Draining:
    """The process's shutdown: whether it began, and how much of the grace period is left."""

    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self._began: float | None = None
        self._steps: list[Step] = []
        self._previous: dict[int, Any] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def draining(self) -> bool:
        return self._began is not None

    def remaining(self) -> float:
        """Seconds of the grace period left; 0 when the process is stopping without a signal
        (the server's own shutdown, a test): then nothing waits."""
        if self._began is None:
            return 0.0
        return max(0.0, self.grace_seconds - (time.monotonic() - self._began))

    def on_drain(self, step: Step) -> None:
        """Run `step` when a signal asks the process to stop, before the server stops."""
        self._steps.append(step)

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hear SIGTERM and SIGINT before the server does, where a server handles them."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in SIGNALS:
            current = signal.getsignal(sig)
            if not callable(current) or current is signal.default_int_handler:
                continue  # no server handles it: leave the default behaviour alone
            self._previous[sig] = current
            signal.signal(sig, lambda number, frame: loop.call_soon_threadsafe(self._heard, number, frame))

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            if signal.getsignal(sig) is not handler:
                signal.signal(sig, handler)
        self._previous.clear()

    def begin(self) -> None:
        """From now on the process is stopping: /readyz says so, the grace period runs."""
        self._began = time.monotonic()
        log.info("asked to stop: draining (grace %.1f s)", self.grace_seconds)

    def _heard(self, number: int, frame: FrameType | None) -> None:
        if self._began is not None:
            self._pass_on(number, frame)
            return
        self.begin()
        self._task = asyncio.get_running_loop().create_task(self._drain(number, frame), name="drain")

    async def _drain(self, number: int, frame: FrameType | None) -> None:
        try:
            for step in self._steps:
                try:
                    await asyncio.wait_for(step(), STEP_SECONDS)
                except Exception:  # noqa: BLE001 - a failing step must not keep the process up
                    log.warning("a draining step failed", exc_info=True)
        finally:
            self._pass_on(number, frame)

    def _pass_on(self, number: int, frame: FrameType | None) -> None:
        previous = self._previous.get(number)
        if callable(previous):
            previous(number, frame)
