"""strawberry's two WebSocket protocol handlers, held to the gateway's rules.

- Every `error` (and legacy `connection_error`) payload carries `extensions.code`, as over
  HTTP: strawberry sends a few of its own without one (the operation cap, a malformed
  connection_init on graphql-ws).
- The legacy graphql-ws protocol gets the connection_init timeout graphql-transport-ws has:
  a socket that never initialises is closed with 4408, on either protocol.
- A connection can be ended from outside (`end`: its key was revoked or expired,
  transport/sockets.py): its operations are stopped first, then it is closed, and no
  message it sends meanwhile starts anything.
- Each operation runs knowing where its messages go (`fanout.recipient`): a subscription of
  a shared stream is then delivered by its group straight to the connection's outlet
  (transport/fanout.py, transport/outlets.py). A connection too slow to take its messages
  is ended with 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from schema.errors import ErrorCode
from transport import fanout, sockets
from transport.outlets import SLOW, SLOW_REASON, Outlet, outlet_for

INIT_TIMEOUT = 4408
INIT_TIMEOUT_REASON = "Connection initialisation timeout"
TOO_MANY_OPERATIONS = ErrorCode.TOO_MANY_OPERATIONS.value

# strawberry's own messages that are not about the client's input, and their codes.
_CODES = {"Subscription limit reached": TOO_MANY_OPERATIONS}


def with_code(error: object, default: str = ErrorCode.BAD_USER_INPUT.value) -> dict[str, Any]:
    """An error payload entry with `extensions.code`, whatever it had."""
    entry: dict[str, Any] = dict(error) if isinstance(error, dict) else {"message": "The request was refused"}
    extensions = dict(entry.get("extensions") or {})
    if "code" not in extensions:
        extensions["code"] = _CODES.get(str(entry.get("message")), default)
    entry["extensions"] = extensions
    return entry


class _Session:
    """What both handlers share: the connection they serve in this process's registry, and
    the outlet its shared subscriptions are written to."""

    socket: sockets.Socket | None
    websocket: Any
    view: Any
    _outlet: Outlet | None = None
    _ending: asyncio.Task[None] | None = None

    def _attach(self) -> None:
        self.socket = sockets.current.get()
        if self.socket is not None:
            self.socket.end = self.end

    @property
    def ended(self) -> bool:
        return self.socket is not None and self.socket.ended

    async def end(self, code: int, reason: str) -> None:
        raise NotImplementedError

    def outlet(self) -> Outlet:
        if self._outlet is None:
            ws = self.websocket.ws  # starlette's WebSocket
            self._outlet = outlet_for(ws.scope, ws.send_text, self._too_slow, self.view.max_unsent_bytes)
        return self._outlet

    def _too_slow(self) -> None:
        if self._ending is None:
            if self.socket is not None:
                self.socket.ended = True
            self._ending = asyncio.create_task(self._end_quietly(SLOW, SLOW_REASON), name="ws-too-slow")

    async def _end_quietly(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):  # closed meanwhile
            await self.end(code, reason)


class TransportWSHandler(_Session, BaseGraphQLTransportWSHandler):  # type: ignore[type-arg]
    """graphql-transport-ws. A subscription delivered by its group is adopted here: its
    operation's task ends without a `complete`, the operation stays registered (it counts
    towards the connection's cap, its id stays taken), and it leaves its group when the
    client completes it or the connection ends. Should the group's stream end or fail,
    its `complete` (after an error, if it failed) is sent from here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._attach()
        self._adopted: dict[str, fanout.Member] = {}
        self._finishing: set[asyncio.Task[None]] = set()

    async def handle_message(self, message: Any) -> None:
        if not self.ended:
            await super().handle_message(message)

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        # The timer is cancelled: a finished task kept for the connection's life holds its
        # cancellation's traceback and frames.
        if self.connection_init_received:
            self.connection_init_timeout_task = None

    async def run_operation(self, operation: Any) -> None:
        adopt = partial(self._adopt, operation.id)
        fanout.recipient.set(fanout.Recipient.transport_ws(self.outlet(), operation.id, adopt))
        await super().run_operation(operation)

    def _adopt(self, operation_id: str, member: fanout.Member) -> None:
        self._adopted[operation_id] = member
        member.finished = partial(self._stream_finished, operation_id, member)

    def _stream_finished(self, operation_id: str, member: fanout.Member, ended: bool) -> None:
        task = asyncio.create_task(self._complete_adopted(operation_id, member, ended))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _complete_adopted(self, operation_id: str, member: fanout.Member, ended: bool) -> None:
        if self._adopted.get(operation_id) is not member:
            return  # completed by its client meanwhile
        del self._adopted[operation_id]
        member.leave()
        self.operations.pop(operation_id, None)
        await member.recipient.outlet.drained()
        with contextlib.suppress(Exception):  # the connection closed meanwhile
            if not ended:
                member.send(fanout.payload_of(member.shaper.internal_error()))
                await member.recipient.outlet.drained()
            await self.send_message({"id": operation_id, "type": "complete"})

    def forget_id(self, id: str) -> None:
        if id not in self._adopted:  # an adopted operation stays registered after its task
            super().forget_id(id)

    async def cleanup_operation(self, operation_id: str) -> None:
        member = self._adopted.pop(operation_id, None)
        if member is not None:
            member.leave()
        await super().cleanup_operation(operation_id)

    async def send_message(self, message: Any) -> None:
        if message.get("type") == "complete" and message.get("id") in self._adopted:
            return  # its task is over, not its subscription
        if message.get("type") == "error":
            message = {**message, "payload": [with_code(entry) for entry in message.get("payload") or [{}]]}
        await super().send_message(message)

    async def end(self, code: int, reason: str) -> None:
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        await self.websocket.close(code, reason)


class LegacyWSHandler(_Session, BaseGraphQLWSHandler):  # type: ignore[type-arg]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._attach()
        self._init_received = False

    async def handle(self) -> None:
        timer = asyncio.create_task(self._init_timeout())
        try:
            await super().handle()
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    async def _init_timeout(self) -> None:
        await asyncio.sleep(self.view.connection_init_wait_timeout.total_seconds())
        if not self._init_received:
            with contextlib.suppress(Exception):  # closed meanwhile
                await self.websocket.close(INIT_TIMEOUT, INIT_TIMEOUT_REASON)

    async def handle_async_results(self, operation_id: str, *args: Any) -> None:
        fanout.recipient.set(fanout.Recipient.legacy_ws(self.outlet(), operation_id))
        await super().handle_async_results(operation_id, *args)

    async def handle_message(self, message: Any) -> None:
        if self.ended:
            return
        if message.get("type") == "connection_init":
            self._init_received = True
        await super().handle_message(message)

    async def send_message(self, message: Any) -> None:
        kind = message.get("type")
        if kind == "error":
            message = {**message, "payload": with_code(message.get("payload"))}
        elif kind == "connection_error":
            message = {**message, "payload": with_code(message.get("payload") or {
                "message": "connection_init takes an object as its payload"})}
        await super().send_message(message)

    async def end(self, code: int, reason: str) -> None:
        await self.cleanup()
        await self.websocket.close(code, reason)
