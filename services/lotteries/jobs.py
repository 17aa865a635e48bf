"""The lottery draw on the durable job queue: enqueued with the lottery, due at its draw time.

However many workers and processes run, the queue's lease gives the job to one at a time, and
the draw itself is a conditional UPDATE (lotteries.draw): a second run finds it drawn and ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from models import Lottery
from services.core.secret_box import SecretBox
from services.core.worker import Handler, JobRun
from services.lotteries.draw import LOTTERY_DRAW, PrizesShort, draw, next_check

log = logging.getLogger("quanyi.lotteries")
PRIZES_WAIT = 600.0  # a draw short of prize codes tries again after this many seconds


def _now() -> datetime:
    return datetime.now(UTC)


class LotteryDraws:
    def __init__(self, seeds: SecretBox, clock: Callable[[], datetime] = _now) -> None:
        self._seeds, self._clock = seeds, clock

    def handlers(self) -> dict[str, Handler]:
        return {LOTTERY_DRAW: self.run}

    async def run(self, run: JobRun) -> None:
        lottery_id = int(run.job.payload.get("lottery", 0))  # type: ignore[call-overload]
        now = self._clock()
        try:
            async with run.uow() as uow:
                lottery = await uow.session.get(Lottery, lottery_id)
                if lottery is not None and lottery.status == "OPEN" and lottery.draw_at > now:
                    await run.later(uow, now, next_check(lottery, now))  # woken early
                    return
                numbers = await draw(uow.session, self._seeds, lottery_id, now)
                if numbers is not None:
                    log.info("lottery %s drawn: %d winners", lottery_id, len(numbers))
                await run.done(uow, now)
        except PrizesShort as short:
            log.warning("%s; the draw waits for codes", short)
            async with run.uow() as uow:
                await run.later(uow, now, PRIZES_WAIT)
