"""Redis clients that fail fast.

Redis holds what the gateway can do without for a while (events, counters, budgets), so a
call that cannot reach it must fail within about a second, and the caller chooses what to
do instead (each caller's choice is listed in docs/operations.md). redis-py's defaults would
retry a refused connection ten times with backoff, and wait 5 s for a silent one.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# What a call that cannot reach Redis raises (a server still loading its data is a
# ConnectionError too); not an error Redis answered with, which is a bug to surface.
UNREACHABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


def redis_client(url: str) -> Redis:
    """One retry at once: a pooled connection that died with a restarted server is replaced
    by a new one, without waiting; a server that is down fails the call."""
    return Redis.from_url(
        url, socket_connect_timeout=1.0, socket_timeout=2.0, retry=Retry(NoBackoff(), 1),
    )
