"""Pub/sub between the parts of the gateway and across its processes."""

from broker.base import Broker
from broker.memory import MemoryBroker

__all__ = ["Broker", "MemoryBroker", "connect"]


def connect(redis_url: str | None, *, prefix: str = "quanyi:") -> Broker:
    """The in-process broker by default; Redis pub/sub when a Redis URL is configured."""
    if redis_url:
        from broker.redis import RedisBroker

        return RedisBroker(redis_url, prefix=prefix)
    return MemoryBroker()
