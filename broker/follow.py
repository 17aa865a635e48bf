"""Following a topic for as long as the process runs, through broker failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from broker.base import Broker, MessagesLost

log = logging.getLogger("quanyi.broker")


async def follow(
    broker: Broker, topic: str, on_message: Callable[[bytes], None], *, on_lost: Callable[[], None], what: str
) -> None:
    """Call `on_message` with every message on `topic` until cancelled.

    When messages may have been missed (the broker lost its connection, or has it again),
    `on_lost` drops whatever the follower can no longer trust, and it subscribes again.
    """
    while True:
        try:
            async with broker.subscribe(topic) as messages:
                async for message in messages:
                    on_message(message)
        except asyncio.CancelledError:
            raise
        except MessagesLost:
            on_lost()
            log.info("%s may have been missed: dropped what was derived from them", what)
        except Exception:
            on_lost()
            log.exception("lost %s; resubscribing", what)
            await asyncio.sleep(1)
