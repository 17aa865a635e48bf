"""The demo's suppliers: two simulated suppliers served by the gateway process itself.

`quanyi serve --demo` mounts them under /demo-suppliers/<code> and points the demo Supplier
rows at them, so a paid top-up completes with nothing else running. sim-fast refuses every
top-up, so each one visibly fails over to sim-backup, which answers PENDING and calls back.
One gateway process only: each process would have simulators of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import update
from starlette.applications import Starlette
from starlette.routing import Mount

from models import Supplier
from services.core.database import Database
from services.core.secret_box import SecretBox
from services.fulfilment.supplier_registry import seal_secret

PREFIX = "/demo-suppliers"
# code -> the simulator's faults
FAULTS: dict[str, dict[str, object]] = {
    "sim-fast": {"fail_all": True, "latency_ms": 50},
    "sim-backup": {"latency_ms": 150, "callback_delay_ms": 300},
}


def demo_secret(secret_key: bytes) -> str:
    """The demo suppliers' signing secret, derived from the secret key (never the key itself)."""
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=b"quanyi demo suppliers v1").derive(secret_key).hex()


def simulators(secret: str) -> dict[str, Starlette]:
    from suppliers.simulator import create_simulator

    return {code: create_simulator(secret, **faults) for code, faults in FAULTS.items()}


def mounts(apps: dict[str, Starlette]) -> list[Mount]:
    return [Mount(f"{PREFIX}/{code}", app=app) for code, app in apps.items()]


@contextlib.asynccontextmanager
async def running(apps: dict[str, Starlette], db: Database, box: SecretBox, secret: str,
                  public_url: str) -> AsyncIterator[None]:
    """Point the demo Supplier rows at the mounted simulators and run the simulators."""
    async with db.sessions() as session, session.begin():
        for code in apps:
            await session.execute(update(Supplier).where(Supplier.code == code).values(
                adapter="http", base_url=f"{public_url.rstrip('/')}{PREFIX}/{code}",
                secret_ciphertext=seal_secret(box, code, secret), timeout_seconds=3.0,
            ))
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.state.simulator.running(app))
        yield
