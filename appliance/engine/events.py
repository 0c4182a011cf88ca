"""Event registration and delivery for the engine's events.

Handlers may be plain functions or coroutines. A handler that raises is logged
and does not stop the others or the engine.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

EVENTS = (
    "room_state_update",
    "room_user_update",
    "room_stream_update",
    "publisher_state_update",
    "player_state_update",
    "publisher_quality_update",
    "player_quality_update",
)


class EventEmitter:
    """Keeps handlers per event name and calls them in registration order."""

    def __init__(self, names: tuple[str, ...] = EVENTS) -> None:
        self._handlers: dict[str, list[Callable[..., Any]]] = {name: [] for name in names}
        self._pending: set[asyncio.Task[Any]] = set()

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        """Calls ``handler`` with the event's arguments each time it happens."""
        if event not in self._handlers:
            raise ValueError(f"unknown event {event!r}; known: {', '.join(self._handlers)}")
        self._handlers[event].append(handler)

    def off(self, event: str, handler: Callable[..., Any] | None = None) -> None:
        """Removes one handler, or every handler of ``event``."""
        handlers = self._handlers.get(event, [])
        if handler is None:
            handlers.clear()
        elif handler in handlers:
            handlers.remove(handler)

    def emit(self, event: str, *args: Any) -> None:
        for handler in list(self._handlers[event]):
            try:
                result = handler(*args)
            except Exception:
                log.exception("%s handler %r failed", event, handler)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._pending.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("event handler failed: %s", task.exception())

    async def drain(self) -> None:
        """Waits for coroutine handlers that are still running."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
