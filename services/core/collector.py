"""The pace of Python's cyclic garbage collector in a served gateway process.

With CPython's default thresholds (a young collection every 700 new container objects) a
stock change fanned out to thousands of WebSocket subscribers runs hundreds of collections,
and what each subscriber keeps from one change to the next (its result, its frames) reaches
the oldest generation fast enough to trigger full collections, each walking every object of
every open connection. In a profile of the fan-out benchmark that was most of the process's
time. Two measures, taken once the gateway has started:

- `gc.freeze()` moves what start-up built (modules, the schema, caches) out of the
  collector's sight: it lives as long as the process and holds no garbage worth finding.
- A young collection every `YOUNG` new objects instead of 700: short-lived objects are
  mostly freed by their reference counts before a collection sees them, and far fewer are
  promoted to be walked again by the older generations.

Cycles are still collected; they wait a little longer. `QUANYI_COLLECTOR_TUNING=0` keeps
CPython's defaults.
"""

from __future__ import annotations

import gc

YOUNG = 50_000
MIDDLE = 20
OLD = 100


def settle() -> None:
    """Freeze what start-up built and slow the collector's pace (see the module's text)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, MIDDLE, OLD)
