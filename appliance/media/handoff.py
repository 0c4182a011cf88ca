"""Hands media from a capture thread to asyncio without ever blocking the thread.

Capture threads (the camera encoder's, the microphone's) call :meth:`put`;
the event loop side awaits :meth:`get`. When the consumer falls behind and the
queue is full, what is queued is dropped (old media is worse than none in a
call), the drop is counted and ``on_drop`` runs on the event loop.

Example:

>>> import asyncio, threading
>>> async def hand_over():
...     handoff = Handoff(asyncio.get_running_loop(), maxsize=8)
...     threading.Thread(target=handoff.put, args=("packet",)).start()  # from any thread
...     return await handoff.get()  # on the event loop
>>> asyncio.run(hand_over())
'packet'
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        maxsize: int,
        on_drop: Callable[[], None] | None = None,
        accept: Callable[[T, bool], bool] | None = None,
    ) -> None:
        """``accept(item, dropped_since_last)`` may refuse items after a drop
        (video waits for the next keyframe)."""
        self.dropped = 0
        self._loop = loop
        self._items: deque[T] = deque()
        self._maxsize = maxsize
        self._on_drop = on_drop
        self._accept = accept
        self._after_drop = False
        self._ready = asyncio.Event()

    def put(self, item: T) -> None:
        """Thread-safe and non-blocking; a no-op once the event loop has closed."""
        try:
            self._loop.call_soon_threadsafe(self._put, item)
        except RuntimeError:  # the loop closed while the capture thread was finishing
            pass

    def _put(self, item: T) -> None:
        if len(self._items) >= self._maxsize:
            self.dropped += len(self._items)
            self._items.clear()
            self._after_drop = True
            if self._on_drop is not None:
                self._on_drop()
        if self._accept is not None and not self._accept(item, self._after_drop):
            self.dropped += 1
            return
        self._after_drop = False
        self._items.append(item)
        self._ready.set()

    async def get(self) -> T:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def __len__(self) -> int:
        return len(self._items)
