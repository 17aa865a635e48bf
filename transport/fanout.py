"""One sender per group of identical subscriptions.

Subscribers whose streams are the same (`SharedStream.key`: the same feed, followed for the
same things) and who sent the same document, variables and operation name with the same
visibility (`Principal.visibility`) form a group. The group follows the stream once, in one
task; for each event it executes the selection once, encodes the `payload` once, and writes
each member's message (`{"id":…,"type":"next","payload":…}`, or graphql-ws's `data`), whose
only difference is the operation id, through the member's connection's outlet
(transport/outlets.py). No member's task wakes for an event. On graphql-transport-ws a
member has no task at all: its connection's handler adopts it (transport/ws_protocols.py)
and it leaves when its client completes it, its connection closes or is ended. On graphql-ws
its operation's task waits, parked, until then.

Messages reach each member in the stream's order. A result with errors names the request
that caused it, so then it is shaped for each member's own request instead of shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from graphql import ExecutionResult as CoreResult
from strawberry.types.execution import ExecutionResult

from schema.live import SharedStream
from transport.metrics import SUBSCRIPTIONS
from transport.outlets import Outlet

log = logging.getLogger("quanyi.ws")

Run = Callable[[object], Awaitable[CoreResult]]


class Shaper(Protocol):
    def result(self, result: CoreResult) -> ExecutionResult: ...

    def internal_error(self) -> ExecutionResult: ...


@dataclass(frozen=True, slots=True)
class Recipient:
    """Where one operation's messages go: its connection's outlet and its message's prefix.
    `adopt`, when given, takes a member over for the operation's handler (see the module)."""

    outlet: Outlet
    prefix: bytes
    adopt: Callable[[Member], None] | None = None

    @classmethod
    def transport_ws(cls, outlet: Outlet, operation_id: str, adopt: Callable[[Member], None]) -> Recipient:
        return cls(outlet, b'{"id":' + orjson.dumps(operation_id) + b',"type":"next","payload":', adopt)

    @classmethod
    def legacy_ws(cls, outlet: Outlet, operation_id: str) -> Recipient:
        return cls(outlet, b'{"type":"data","id":' + orjson.dumps(operation_id) + b',"payload":')


# The operation the current task runs: set by the protocol handlers (transport/ws_protocols.py).
recipient: contextvars.ContextVar[Recipient | None] = contextvars.ContextVar("quanyi_recipient", default=None)


def _ignore(ended: bool) -> None:
    pass


class Member:
    """One subscription of a group: where its messages go, and how its results are shaped
    (the request it names in an error is its own). `finished` hears whether the stream
    ended (True) or failed (False)."""

    __slots__ = ("_group", "finished", "recipient", "shaper")

    def __init__(self, recipient: Recipient, shaper: Shaper) -> None:
        self.recipient, self.shaper = recipient, shaper
        self.finished: Callable[[bool], None] = _ignore
        self._group: _Group | None = None

    def send(self, payload: bytes) -> None:
        self.recipient.outlet.write(self.recipient.prefix, payload)

    def leave(self) -> None:
        group, self._group = self._group, None
        if group is not None:
            group.remove(self)

    async def parked(self) -> bool:
        """Until the stream ends or fails (then True or False), or the caller is cancelled."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.finished = lambda ended: None if done.done() else done.set_result(ended)
        try:
            return await done
        finally:
            self.leave()


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
        self.members: dict[Member, None] = {}  # in joining order
        self.finished = False
        self._latest: CoreResult | None = None  # of a stream that replays it to late members
        self.task = asyncio.create_task(self._follow(), name="subscription-group")

    def add(self, member: Member) -> None:
        self.members[member] = None
        member._group = self
        SUBSCRIPTIONS.inc()
        if self._latest is not None:  # set and sent to the others with no await between
            member.send(payload_of(member.shaper.result(self._latest)))

    def remove(self, member: Member) -> None:
        if self.members.pop(member, 0) is None:
            SUBSCRIPTIONS.dec()
        if not self.members and not self.finished:
            self.finished = True
            self.task.cancel()
            self._on_finish(self)

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
                member.finished(ended)

    async def _deliver(self, event: object) -> None:
        result = await self._run(event)
        if self._stream.replays:
            self._latest = result
        members = list(self.members)
        if not members:
            return
        if not result.errors:
            payload = payload_of(members[0].shaper.result(result))
            for member in members:
                member.send(payload)
            return
        for member in members:  # each error names the member's own request
            member.send(payload_of(member.shaper.result(result)))


class Groups:
    """This process's groups, by stream and by what else decides a result."""

    def __init__(self) -> None:
        self._groups: dict[Hashable, _Group] = {}

    async def join(self, key: Hashable, stream: SharedStream, member: Member, run: Run) -> None:
        """`member` hears the stream's results, executed by `run` (of the group's first
        member), from now until it leaves or the stream ends."""
        group = self._groups.get(key)
        if group is None or group.finished:
            group = self._groups[key] = _Group(stream, run, lambda finished: self._forget(key, finished))
            group.add(member)
            return
        group.add(member)
        await stream.aclose()  # the group's own stream serves this member

    def _forget(self, key: Hashable, group: _Group) -> None:
        if self._groups.get(key) is group:
            del self._groups[key]

    def __len__(self) -> int:
        return len(self._groups)

    def members(self) -> int:
        return sum(len(group.members) for group in self._groups.values())
