r"""systemd notification: READY, STATUS, RELOADING, STOPPING and the watchdog.

Does nothing when not started by systemd (no ``$NOTIFY_SOCKET``). The
watchdog is pinged from a task on the event loop, so a blocked loop stops the
pings and systemd restarts the service.

Example, with a ``NOTIFY_SOCKET`` of our own standing in for systemd:

>>> import os, socket
>>> systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
>>> systemd.bind(str(tmp / "notify"))
>>> os.environ["NOTIFY_SOCKET"] = str(tmp / "notify")
>>> Notifier().ready("Idle: room-42")
>>> systemd.recv(100)
b'READY=1\nSTATUS=Idle: room-42'
>>> del os.environ["NOTIFY_SOCKET"]
>>> systemd.close()
"""

from __future__ import annotations

import asyncio
import logging
import os

from systemd import daemon

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, interval: float = 0.0) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))
        usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        # Ping at half of WatchdogSec, as systemd advises, unless configured.
        self.interval = interval or (usec / 2_000_000 if usec else 0.0)

    def _send(self, text: str) -> None:
        if not self.enabled:
            return
        try:
            daemon.notify(text)
        except OSError as exc:  # the manager went away; nothing to tell it any more
            log.debug("sd_notify failed: %s", exc)

    def ready(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={status}")

    def status(self, status: str) -> None:
        self._send(f"STATUS={status}")

    def reloading(self) -> None:
        self._send("RELOADING=1")

    def reloaded(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={status}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    async def watchdog(self) -> None:
        """Pings the watchdog for as long as the event loop runs it."""
        if not self.enabled or not self.interval:
            return
        while True:
            self._send("WATCHDOG=1")
            await asyncio.sleep(self.interval)
