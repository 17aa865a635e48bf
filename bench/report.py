"""Figures of one measured server and the tables that show them."""

from __future__ import annotations

from dataclasses import dataclass

import tables
from load import Outcome

GATEWAY_OFF = "gateway, QUANYI_RESPONSE_CACHE=0"
GATEWAY_ON = "gateway, QUANYI_RESPONSE_CACHE=1"
FLOOR = "HTTP floor (Starlette, bytes from memory)"
STRAWBERRY = "plain strawberry (in-memory objects)"


@dataclass(frozen=True)
class Figures:
    server: str
    rps: float
    p50_ms: float
    p99_ms: float
    server_cpu_us: float | None  # server CPU per request
    client_cpu: float  # share of one core the load generator used
    failed: int

    @classmethod
    def of(cls, server: str, outcome: Outcome) -> Figures:
        latencies = sorted(outcome.latencies)

        def quantile(q: float) -> float:
            return (
                latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
                if latencies
                else 0.0
            )

        cpu = outcome.server_cpu
        return cls(
            server=server,
            rps=outcome.completed / outcome.window,
            p50_ms=quantile(0.50),
            p99_ms=quantile(0.99),
            server_cpu_us=cpu / outcome.completed * 1e6
            if cpu is not None and outcome.completed
            else None,
            client_cpu=outcome.client_cpu / outcome.window,
            failed=outcome.failed,
        )


HEADER = (
    "server",
    "req/s",
    "p50 ms",
    "p99 ms",
    "× strawberry",
    "× floor",
    "server CPU/req",
    "client CPU",
)


def rows(figures: list[Figures]) -> list[tuple[str, ...]]:
    by_name = {f.server: f for f in figures}
    strawberry, floor = by_name.get(STRAWBERRY), by_name.get(FLOOR)
    return [
        (
            f.server,
            f"{f.rps:,.0f}",
            tables.ms(f.p50_ms),
            tables.ms(f.p99_ms),
            f"{f.rps / strawberry.rps:.2f}×" if strawberry and strawberry.rps else "–",
            f"{f.rps / floor.rps:.3f}×" if floor and floor.rps else "–",
            _cpu(f.server_cpu_us),
            f"{f.client_cpu:.0%}",
        )
        for f in figures
    ]


def _cpu(micros: float | None) -> str:
    if micros is None:
        return "–"
    return f"{micros:.0f} µs" if micros < 1000 else f"{micros / 1000:.2f} ms"


def text_table(figures: list[Figures]) -> str:
    return tables.text_table(HEADER, rows(figures))


def markdown_table(figures: list[Figures]) -> str:
    return tables.markdown_table(HEADER, rows(figures))
