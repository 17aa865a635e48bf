"""Pub/sub between the parts of the gateway and across its processes."""

from broker.base import Broker, MessagesLost
from broker.fanout import OnDelivery
from broker.memory import MemoryBroker

__all__ = ["Broker", "MemoryBroker", "MessagesLost", "connect"]


def connect(redis_url: str | None, *, prefix: str = "quanyi:", on_delivery: OnDelivery | None = None) -> Broker:
    """The in-process broker by default; Redis pub/sub when a Redis URL is configured.
    `on_delivery` hears the topic and lag of each message a subscriber takes."""
    if redis_url:
        from broker.redis import RedisBroker

        return RedisBroker(redis_url, prefix=prefix, on_delivery=on_delivery)
    return MemoryBroker(on_delivery=on_delivery)
