"""Real-time pacing for synthetic sources.

Example:

>>> import asyncio
>>> async def ticks():
...     pacer = Pacer(0.05)
...     return [await pacer.wait() for _ in range(3)]  # 0: no tick missed
>>> asyncio.run(ticks())
[0, 0, 0]
"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """Waits until the next tick. After a pause longer than one interval
    (nobody was reading) it starts again from now instead of catching up in a
    burst."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: float | None = None

    async def wait(self) -> int:
        """Waits for the next tick; returns how many ticks were missed (0 on time)."""
        now = time.monotonic()
        missed = 0
        if self._next is None:
            self._next = now
        elif now - self._next > self.interval:
            missed = int((now - self._next) / self.interval)
            self._next = now
        elif self._next > now:
            await asyncio.sleep(self._next - now)
        self._next += self.interval
        return missed
