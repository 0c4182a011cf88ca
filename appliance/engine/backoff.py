"""Capped exponential backoff with full jitter, for reconnect loops.

>>> backoff = Backoff(0.25, 8.0)
>>> delays = [backoff.next_delay() for _ in range(10)]
>>> all(0 <= d <= 8.0 for d in delays)
True
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, min_delay: float, max_delay: float, factor: float = 2.0) -> None:
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.factor = factor
        self.attempts = 0

    def next_delay(self) -> float:
        """The delay before the next attempt: jittered, grows, never above the cap."""
        ceiling = min(self.max_delay, self.min_delay * self.factor**self.attempts)
        self.attempts += 1
        # Jitter keeps a fleet of appliances from reconnecting in lock step.
        return random.uniform(self.min_delay, max(self.min_delay, ceiling))

    def reset(self) -> None:
        self.attempts = 0
