"""End-to-end tests: real gateway processes on a database of their own.

Two gateways sharing events need Redis. That test is collected only in the run that has
it (QUANYI_TEST_REDIS_URL set, the PostgreSQL and Redis run), so the embedded run neither
skips it nor reports it passed; where the variable is set, an unreachable Redis fails it.
"""

from __future__ import annotations

from tests.support import TEST_REDIS_URL

collect_ignore = [] if TEST_REDIS_URL else ["test_cross_process.py", "test_risk_cross_process.py"]
