"""Liveness and readiness probes.

/readyz is ready when the database answers (docs/operations.md). A read replica that is
unreachable or behind its bound makes it `degraded`, not unready: the primary serves its reads
meanwhile, and `replica` says which server serves them and how far behind the replica is.
It also says whether every direct top-up SKU on sale has a supplier it can reach
(`suppliers`): a SKU that has none cannot deliver what it sells, but the gateway still serves
everything else, so that is a detail for operators, not a reason to leave the load balancer.
The probe is public: it names SKUs (the catalog does too), never suppliers or their settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse

from services.core.replica import LAGGING, UNREACHABLE
from services.fulfilment import connections

log = logging.getLogger("quanyi.health")

# A probe that hangs is as bad as one that fails: load balancers time out around here.
CHECK_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> JSONResponse:
    """The process is up and serving requests."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """200 when the database answers: `ok`, or `degraded` while the broker does not; 503
    `unavailable` without the database, and `draining` once the process was asked to stop,
    so that a load balancer sends it nothing new."""
    draining = getattr(request.app.state, "draining", None)
    if draining is not None and draining.draining:
        return JSONResponse({"status": "draining"}, 503)
    checks = {"database": request.app.state.db.ping}
    broker = getattr(request.app.state, "broker", None)
    if broker is not None:
        checks["broker"] = broker.ping
    results = await asyncio.gather(*(_check(name, ping) for name, ping in checks.items()))
    body: dict[str, object] = dict(zip(checks, results, strict=True))
    if body["database"] != "ok":
        return JSONResponse({"status": "unavailable", **body}, 503)
    registry = getattr(request.app.state, "suppliers", None)
    if registry is not None:
        body["suppliers"] = await _suppliers(request.app.state.db, registry)
    degraded = not all(r == "ok" for r in results)
    replica = request.app.state.db.replica
    if replica is not None:
        # A replica unreachable or behind its bound: the primary serves its reads meanwhile.
        body["replica"] = described = replica.describe()
        degraded = degraded or described["status"] in (UNREACHABLE, LAGGING)
    # Without the broker the gateway still serves: reads, orders and operators' changes work,
    # events reach this process only and Redis counters fall back (docs/operations.md).
    return JSONResponse({"status": "degraded" if degraded else "ok", **body}, 200)


async def _suppliers(db: object, registry: object) -> dict[str, object]:
    async def read() -> tuple[connections.Connections, int]:
        async with db.fresh_sessions() as session:  # type: ignore[attr-defined]
            found = await connections.check(session, registry)  # type: ignore[arg-type]
            waiting, _ = await connections.waiting_topups(session)
        return found, waiting

    try:
        found, waiting = await asyncio.wait_for(read(), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001 - a detail; readiness stands on the database and broker
        log.warning("supplier connections not checked: %s", type(error).__name__)
        return {"status": "unknown"}
    skus = [stranded.code for stranded in found.stranded]
    return {
        "status": "ok" if not skus and not waiting else "attention",
        "skusWithoutUsableSupplier": skus,
        "topUpsWaitingForSupplier": waiting,
    }


async def _check(name: str, ping: Callable[[], Awaitable[None]]) -> str:
    try:
        await asyncio.wait_for(ping(), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # noqa: BLE001  any failure to answer means not ready
        log.warning("%s not reachable: %s", name, type(error).__name__)
        return "unreachable"
    return "ok"
