r"""systemd notification: READY, STATUS, RELOADING, STOPPING and the watchdog.

Does nothing when not started by systemd (no ``$NOTIFY_SOCKET``). The socket
is opened once, at construction, and kept: a process that has run out of file
descriptors (an admin-socket flood, say) still pings the watchdog. The
watchdog is pinged from a task on the event loop, so a blocked loop stops the
pings and systemd restarts the service.

A status is one printable line of at most 200 characters whatever went into
it (a server's error text, say), so nothing can add a line such as
``WATCHDOG=trigger`` to what systemd reads.

Example, with a ``NOTIFY_SOCKET`` of our own standing in for systemd:

>>> import os, socket
>>> systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
>>> systemd.bind(str(tmp / "notify"))
>>> os.environ["NOTIFY_SOCKET"] = str(tmp / "notify")
>>> notifier = Notifier()
>>> notifier.ready("Idle: room-42")
>>> systemd.recv(100)
b'READY=1\nSTATUS=Idle: room-42'
>>> notifier.status("refused:\nWATCHDOG=trigger")
>>> systemd.recv(100)
b'STATUS=refused: WATCHDOG=trigger'
>>> notifier.close()
>>> del os.environ["NOTIFY_SOCKET"]
>>> systemd.close()
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from ..engine.errors import one_line

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, interval: float = 0.0) -> None:
        address = os.environ.get("NOTIFY_SOCKET", "")
        usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
        # A third of WatchdogSec unless configured: one late ping still keeps
        # every gap within half of it.
        self.interval = interval or (usec / 3_000_000 if usec else 0.0)
        self.watchdog_usec = usec
        self.watchdog_pings = 0
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._socket: socket.socket | None = None
        if address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def _send(self, text: str) -> None:
        if self._socket is None:
            return
        try:
            self._socket.sendto(text.encode(), self._address)
        except OSError as exc:  # the manager went away, or its queue is full: nothing to do
            log.debug("sd_notify failed: %s", exc)

    def ready(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={one_line(status)}")

    def status(self, status: str) -> None:
        self._send(f"STATUS={one_line(status)}")

    def reloading(self) -> None:
        self._send("RELOADING=1")

    def reloaded(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={one_line(status)}")

    def stopping(self) -> None:
        self._send("STOPPING=1")

    async def watchdog(self) -> None:
        """Pings the watchdog for as long as the event loop runs it."""
        if self._socket is None or not self.interval:
            return
        while True:
            self._send("WATCHDOG=1")
            self.watchdog_pings += 1
            await asyncio.sleep(self.interval)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
