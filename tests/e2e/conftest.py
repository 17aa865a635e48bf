"""End-to-end tests: real gateway processes on a database of their own.

Two gateways sharing events and counters need Redis. Those tests are collected only in the
run that has it (QUANYI_TEST_REDIS_URL set, the PostgreSQL and Redis run), so the embedded run
neither skips them nor reports them passed; where the variable is set, an unreachable Redis
fails them.
"""

from __future__ import annotations

from tests.support import TEST_DATABASE_URL, TEST_REDIS_URL

collect_ignore = [] if TEST_REDIS_URL else [
    "test_cross_process.py", "test_risk_cross_process.py", "test_payment_races.py", "test_key_sessions.py", "test_redis_restart.py",
    "test_cache_cross_process.py", "test_partner_cache_cross_process.py",
]
# PostgreSQL itself (a cluster of the test's own, pg_dump): the PostgreSQL run only.
if TEST_DATABASE_URL is None:
    collect_ignore += ["test_postgres_restart.py", "test_backup_restore.py", "test_read_replica.py"]
