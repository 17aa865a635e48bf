"""A rush of buyers: C concurrent connections place N numbered orders as fast as answered.

`rush()` is the same for both paths; each path brings its own way to place order number n
on one connection (`Place`): a placeOrder mutation over a keep-alive HTTP/1.1 connection
(`bench/load.py`'s bare asyncio client), or the raw asyncpg floor (`bench/flash_floor.py`).
Every request is timed, and every answer is classed as placed, refused OUT_OF_STOCK, or an
error. It runs in a process of its own, like the catalog's load generator, and meters the
CPU the application and PostgreSQL spend while the sale runs. The gateway path's orders can
come from wrk instead (`bench/flash_wrk.py`, the default when it is installed): the same
requests, tallied the same way, for a fraction of this client's CPU.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import orjson
from load import Connection, http_post, server_cpu
from servers import tree_cpu, tree_pids

PLACED, OUT_OF_STOCK = "PLACED", "OUT_OF_STOCK"

# What a buyer is told: PLACED, OUT_OF_STOCK, or anything else, which counts as an error.
Place = Callable[[int], Awaitable[str]]

PLACE_ORDER = """
mutation Place($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id number status } accessToken userErrors { field code } }
}
"""


@dataclass(frozen=True, slots=True)
class Mark:
    """Counters read at `at` seconds after the first request."""

    at: float
    app: float | None
    writes: float | None
    database: float | None


@dataclass(frozen=True, slots=True)
class Phase:
    """One part of a sale: attempts answered in it, and what the processes spent over it."""

    seconds: float
    answered: int
    placed: int
    refused: int
    app_cpu: float | None
    app_writes: float | None
    database_cpu: float | None

    def per_attempt(self, total: float | None, scale: float = 1.0) -> float | None:
        return total / self.answered * scale if total is not None and self.answered else None

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Tally:
    sent: int = 0
    placed: int = 0
    refused: int = 0  # OUT_OF_STOCK
    errors: int = 0
    first_error: str | None = None
    latencies: list[float] = field(default_factory=list)  # every answered request, seconds
    answered_at: list[float] = field(default_factory=list)  # when each was answered, from the first request
    placed_at: list[float] = field(default_factory=list)  # when each order was placed, likewise
    selling: float = 0.0  # seconds from the first request to the last order placed
    elapsed: float = 0.0  # seconds from the first request to the last answer
    capped: bool = False  # the time cap stopped the sale before every order was sent
    app_cpu: float | None = None  # CPU seconds of the application process during the sale
    app_writes: int | None = None  # write system calls of the application process: its round
    # trips to PostgreSQL, and for the gateway its HTTP answers
    database_cpu: float | None = None  # CPU seconds of PostgreSQL's processes during the sale
    client_cpu: float = 0.0  # CPU seconds of the load generator during the sale (this process, or wrk)
    answers: list[tuple[float, str]] = field(default_factory=list)  # (seconds after start, verdict)
    marks: list[Mark] = field(default_factory=list)  # counters read every MARK_SECONDS

    def phases(self) -> tuple[Phase, Phase]:
        """The selling phase (the first request to the last order placed) and the sold-out
        phase after it, when every attempt is refused."""
        end = self.selling
        return self._phase(0.0, end), self._phase(end, self.elapsed)

    def _phase(self, start: float, end: float) -> Phase:
        inside = [verdict for at, verdict in self.answers if start < at <= end]
        return Phase(
            seconds=end - start,
            answered=len(inside),
            placed=sum(1 for verdict in inside if verdict == PLACED),
            refused=sum(1 for verdict in inside if verdict == OUT_OF_STOCK),
            app_cpu=self._between("app", start, end),
            app_writes=self._between("writes", start, end),
            database_cpu=self._between("database", start, end),
        )

    def _between(self, name: str, start: float, end: float) -> float | None:
        first, last = _at(self.marks, name, start), _at(self.marks, name, end)
        return last - first if first is not None and last is not None else None

    @property
    def orders_per_second(self) -> float:
        return self.placed / self.selling if self.selling > 0 else 0.0

    def quantile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


async def rush(places: list[Place], orders: int, cap_seconds: float, app_pid: int | None) -> Tally:
    """Orders 0..orders-1, each placed once, by len(places) buyers at a time.

    `app_pid` is the process that serves the orders; None when it is this one (the floor).
    """
    tally = Tally()
    numbers = iter(range(orders))
    app_pid = os.getpid() if app_pid is None else app_pid
    before = _marks(app_pid)
    start = time.perf_counter()
    deadline = start + cap_seconds
    tally.marks.append(_mark(0.0, before))
    sampling = asyncio.create_task(_sample(tally, app_pid, start))

    async def buyer(place: Place) -> None:
        for n in numbers:  # one shared iterator: each number goes to exactly one buyer
            sent = time.perf_counter()
            if sent >= deadline:
                tally.capped = True
                return
            tally.sent += 1
            try:
                verdict = await place(n)
            except Exception as error:  # noqa: BLE001 - a broken connection ends this buyer only
                tally.errors += 1
                tally.first_error = tally.first_error or repr(error)
                return
            done = time.perf_counter()
            tally.latencies.append(done - sent)
            tally.answered_at.append(done - start)
            tally.answers.append((done - start, verdict))
            tally.elapsed = max(tally.elapsed, done - start)
            if verdict == PLACED:
                tally.placed += 1
                tally.placed_at.append(done - start)
                tally.selling = max(tally.selling, done - start)
            elif verdict == OUT_OF_STOCK:
                tally.refused += 1
            else:
                tally.errors += 1
                tally.first_error = tally.first_error or verdict

    await asyncio.gather(*(buyer(place) for place in places))
    sampling.cancel()
    after = _marks(app_pid)
    tally.marks.append(_mark(time.perf_counter() - start, after))
    tally.app_cpu = _delta(before["app"], after["app"])
    tally.database_cpu = _delta(before["database"], after["database"])
    tally.client_cpu = (after["client"] or 0.0) - (before["client"] or 0.0)
    writes = _delta(before["writes"], after["writes"])
    tally.app_writes = int(writes) if writes is not None else None
    return tally


MARK_SECONDS = 0.05


async def _sample(tally: Tally, app_pid: int, start: float) -> None:
    """Reads the counters every MARK_SECONDS, so each phase of the sale gets its own share."""
    while True:
        await asyncio.sleep(MARK_SECONDS)
        tally.marks.append(_mark(time.perf_counter() - start, _marks(app_pid)))


def _mark(at: float, marks: dict[str, float | None]) -> Mark:
    return Mark(at, marks["app"], marks["writes"], marks["database"])


def _at(marks: list[Mark], name: str, moment: float) -> float | None:
    """A counter's value at `moment`, between the readings on either side of it."""
    before = after = None
    for mark in marks:
        value = getattr(mark, name)
        if value is None:
            return None
        if mark.at <= moment:
            before = (mark.at, value)
        elif after is None:
            after = (mark.at, value)
    if before is None:
        return after[1] if after else None
    if after is None or after[0] == before[0]:
        return before[1]
    share = (moment - before[0]) / (after[0] - before[0])
    return before[1] + share * (after[1] - before[1])


def _marks(app_pid: int) -> dict[str, float | None]:
    return {
        "app": tree_cpu(app_pid),
        "writes": _write_calls(app_pid),
        "database": _postgres_cpu(),
        "client": time.process_time(),
    }


def _delta(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def _write_calls(pid: int) -> float | None:
    """Write system calls a process and its children (uvicorn's workers) have made (Linux
    only). asyncpg sends each statement, BEGIN and COMMIT in one write, so the count follows
    the round trips to PostgreSQL."""
    total, seen = 0.0, False
    for member in tree_pids(pid):
        try:
            with open(f"/proc/{member}/io", "rb") as io:
                for line in io:
                    if line.startswith(b"syscw:"):
                        total, seen = total + float(line.split()[1]), True
        except OSError:
            pass
    return total if seen else None


class _PostgresMeter:
    """CPU seconds PostgreSQL's processes on this machine have spent since the first reading
    (Linux only): each process's user + system time counted from that reading, or from its
    start when it appeared later.

    A sum over the processes alive at each reading would drop whenever one exits (another
    client's backend closing), so readings would go backwards; each process's own increase
    never does. What a process spends between its last reading and its exit is not counted:
    a connection of the sale lives as long as its pool, the whole sale.
    """

    def __init__(self) -> None:
        self._last: dict[int, float] = {}  # each process's CPU at its last reading
        self._total = 0.0
        self._read = False

    def read(self) -> float | None:
        found = False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/comm", "rb") as comm:
                    if comm.read().strip() != b"postgres":
                        continue
            except OSError:
                continue
            pid = int(entry.name)
            cpu = server_cpu(pid)
            if cpu is None:
                continue
            found = True
            before = self._last.get(pid, 0.0 if self._read else cpu)
            self._total += max(cpu - before, 0.0)
            self._last[pid] = cpu
        self._read = True
        return self._total if found else None


_postgres = _PostgresMeter()  # the client process makes every reading


def _postgres_cpu() -> float | None:
    return _postgres.read()


# The gateway path ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sale:
    """Orders of one SKU through the gateway's placeOrder, one idempotency key each."""

    sku_gid: str  # the SKU's global ID
    orders: int
    key_prefix: str
    top_up: bool = False  # a direct top-up SKU: each buyer names the account to credit (their phone)


@dataclass(frozen=True, slots=True)
class GatewayPlan:
    host: str
    port: int
    gateway_pid: int
    channel: str
    concurrency: int
    cap_seconds: float
    warmup: Sale
    sale: Sale
    timeout: float = 30.0  # seconds one answer may take before it counts as an error
    sale_starts_at: float | None = None  # a sale event: the rush waits for its start (epoch seconds)


def order_request(host: str, port: int, channel: str, sale: Sale, n: int) -> bytes:
    """Order n's placeOrder request; bench/flash_rush.lua builds the same bytes for wrk."""
    key = order_key(sale, n)
    variables = {
        "input": {
            "channel": channel,
            "idempotencyKey": key,
            "lines": [{"skuId": sale.sku_gid, "quantity": 1}],
            # A buyer of its own per order, as in a real rush.
            "buyer": {"phone": buyer_phone(n), "deviceId": f"bench-{n}"},
        }
    }
    if sale.top_up:
        variables["input"]["buyer"]["rechargeAccount"] = buyer_phone(n)  # type: ignore[index]
    body = orjson.dumps({"query": PLACE_ORDER, "operationName": "Place", "variables": variables})
    # The key as the request's id too: the gateway echoes it in X-Request-Id, which pairs each
    # answer with its order for wrk (whose script is told the answer, not the connection).
    return http_post(host, port, "/graphql", body, {"X-Request-Id": key})


def order_key(sale: Sale, n: int) -> str:
    return f"{sale.key_prefix}-order-{n:08d}"  # a guest's key: 16 characters at least


def buyer_phone(n: int) -> str:
    return f"139{n:08d}"


def verdict_of(status: int, body: bytes) -> str:
    if status != 200:
        return f"HTTP {status}: {body[:300]!r}"
    answer = orjson.loads(body)
    payload = (answer.get("data") or {}).get("placeOrder")
    if answer.get("errors") or payload is None:
        return f"errors: {body[:300]!r}"
    if payload["order"] is not None and payload["accessToken"]:
        return PLACED
    codes = [error["code"] for error in payload["userErrors"]]
    return OUT_OF_STOCK if codes == [OUT_OF_STOCK] else f"userErrors: {codes}"


# How one sale (the warm-up or the rush) is sent to the gateway and tallied.
SaleDriver = Callable[[GatewayPlan, Sale], Awaitable[Tally]]


async def through_gateway(plan: GatewayPlan, sale: Sale) -> Tally:
    """The sale from this process's asyncio client: `rush()` over plan.concurrency connections."""
    loop = asyncio.get_running_loop()
    connections = [
        (await loop.create_connection(Connection, plan.host, plan.port))[1]
        for _ in range(plan.concurrency)
    ]

    def place_on(connection: Connection) -> Place:
        async def place(n: int) -> str:
            request = order_request(plan.host, plan.port, plan.channel, sale, n)
            status, body = await asyncio.wait_for(connection.exchange(request), plan.timeout)
            return verdict_of(status, body)

        return place

    try:
        places = [place_on(c) for c in connections]
        return await rush(places, sale.orders, plan.cap_seconds, plan.gateway_pid)
    finally:
        for connection in connections:
            connection.close()


async def gateway_sale(plan: GatewayPlan, through: SaleDriver) -> tuple[Tally, Tally]:
    warmup = await through(plan, plan.warmup)
    if plan.sale_starts_at is not None:
        await asyncio.sleep(max(0.0, plan.sale_starts_at - time.time()))
    return warmup, await through(plan, plan.sale)


def run_gateway(plan: GatewayPlan) -> tuple[Tally, Tally]:
    """The warm-up's tally and the sale's from the Python client; the entry of the client process."""
    return drive(gateway_sale(plan, through_gateway))


def drive(work: Awaitable[tuple[Tally, Tally]]) -> tuple[Tally, Tally]:
    """Runs a path's warm-up and sale on uvloop when it is installed, as uvicorn does."""
    try:
        import uvloop

        return uvloop.run(work)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(work)  # type: ignore[arg-type]
