"""One sender per group of identical subscriptions.

Subscribers whose streams are the same (`SharedStream.key`: the same feed, followed for the
same things) and who sent the same document, variables and operation name with the same
visibility (`Principal.visibility`) form a group. The group follows the stream once, in one
task; for each event it executes the selection once, encodes the `payload` once, and writes
each member's message (`{"id":…,"type":"next","payload":…}`, or graphql-ws's `data`), whose
only difference is the operation id, through the member's connection's outlet
(transport/outlets.py). No member's task wakes for an event: it waits, parked, until it
leaves (its client completes it, its connection closes or is ended) or the stream ends.

Messages reach each member in the stream's order. A result with errors names the request
that caused it, so then each member's own execution answers it instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import orjson
from strawberry.types.execution import ExecutionResult

from schema.live import SharedStream
from transport.outlets import Outlet

log = logging.getLogger("quanyi.ws")

Run = Callable[[object], Awaitable[ExecutionResult]]


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where one operation's messages go: its connection's outlet and its message's prefix."""

    outlet: Outlet
    prefix: bytes

    @classmethod
    def transport_ws(cls, outlet: Outlet, operation_id: str) -> Recipient:
        return cls(outlet, b'{"id":' + orjson.dumps(operation_id) + b',"type":"next","payload":')

    @classmethod
    def legacy_ws(cls, outlet: Outlet, operation_id: str) -> Recipient:
        return cls(outlet, b'{"type":"data","id":' + orjson.dumps(operation_id) + b',"payload":')


# The operation the current task runs: set by the protocol handlers (transport/ws_protocols.py).
recipient: contextvars.ContextVar[Recipient | None] = contextvars.ContextVar("quanyi_recipient", default=None)


class _Member:
    __slots__ = ("done", "recipient", "run")

    def __init__(self, recipient: Recipient, run: Run) -> None:
        self.recipient, self.run = recipient, run
        self.done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def finish(self, ended: bool) -> None:
        if not self.done.done():
            self.done.set_result(ended)


def payload_of(result: ExecutionResult) -> bytes:
    """The `payload` both protocols send for a result, as strawberry's handlers build it."""
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return orjson.dumps(payload)


class _Group:
    def __init__(self, stream: SharedStream, run: Run, on_finish: Callable[[_Group], None]) -> None:
        self._stream, self._run, self._on_finish = stream, run, on_finish
        self.members: dict[_Member, None] = {}  # in joining order
        self.finished = False
        self.task = asyncio.create_task(self._follow(), name="subscription-group")

    async def _follow(self) -> None:
        ended = False
        try:
            async for event in self._stream:
                await self._deliver(event)
            ended = True
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a shared subscription stream failed")
        finally:
            self.finished = True
            self._on_finish(self)
            with contextlib.suppress(Exception):
                await self._stream.aclose()
            for member in list(self.members):
                member.finish(ended)

    async def _deliver(self, event: object) -> None:
        result = await self._run(event)
        if not result.errors:
            payload = payload_of(result)
            for member in list(self.members):
                member.recipient.outlet.write(member.recipient.prefix, payload)
            return
        for member in list(self.members):
            if member in self.members:
                own = await member.run(event)
                member.recipient.outlet.write(member.recipient.prefix, payload_of(own))


class Groups:
    """This process's groups, by stream and by what else decides a result."""

    def __init__(self) -> None:
        self._groups: dict[Hashable, _Group] = {}

    async def follow(self, key: Hashable, stream: SharedStream, recipient: Recipient, run: Run) -> bool:
        """Deliver the stream's results to `recipient` until it is cancelled or the stream
        ends: True when it ended, False when it failed."""
        group = self._groups.get(key)
        spare: SharedStream | None = stream
        if group is None or group.finished:
            group = self._groups[key] = _Group(stream, run, lambda finished: self._forget(key, finished))
            spare = None
        member = _Member(recipient, run)
        group.members[member] = None
        try:
            if spare is not None:
                await spare.aclose()  # the group's own stream serves this member
            return await member.done
        finally:
            group.members.pop(member, None)
            if not group.members and not group.finished:
                group.task.cancel()
                self._forget(key, group)

    def _forget(self, key: Hashable, group: _Group) -> None:
        if self._groups.get(key) is group:
            del self._groups[key]

    def __len__(self) -> int:
        return len(self._groups)

    def members(self) -> int:
        return sum(len(group.members) for group in self._groups.values())
