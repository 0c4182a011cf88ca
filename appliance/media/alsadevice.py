"""An ALSA device that may come and go (a USB speakerphone unplugged).

Used by the microphone and the speaker threads: :meth:`ReopeningDevice.get`
returns the open PCM, or tries to open it again once ``reopen_interval`` has
passed; losing and finding the device is logged once each, never fatal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import alsaaudio

log = logging.getLogger(__name__)


class ReopeningDevice:
    def __init__(self, what: str, name: str, open_pcm: Callable[[], Any], reopen_interval: float) -> None:
        self.what, self.name = what, name
        self.available = False
        self._open_pcm = open_pcm
        self._reopen_interval = reopen_interval
        self._pcm: Any = None
        self._next_try = 0.0
        self._reported_missing = False

    def get(self) -> Any:
        """The open PCM, or None while the device is away."""
        if self._pcm is None and time.monotonic() >= self._next_try:
            self._next_try = time.monotonic() + self._reopen_interval
            try:
                self._pcm = self._open_pcm()
            except alsaaudio.ALSAAudioError as exc:
                if not self._reported_missing:
                    log.warning("%s %r cannot be opened (%s); retrying every %g s",
                                self.what, self.name, exc, self._reopen_interval)
                    self._reported_missing = True
                return None
            if self._reported_missing:
                log.warning("%s %r is back", self.what, self.name)
                self._reported_missing = False
            self.available = True
        return self._pcm

    def lost(self, exc: Exception) -> None:
        """The device failed while in use: close it and try again later."""
        log.warning("%s %r is gone (%s); retrying every %g s", self.what, self.name, exc, self._reopen_interval)
        self._reported_missing = True
        self.close()
        self._next_try = time.monotonic() + self._reopen_interval

    def close(self) -> None:
        pcm, self._pcm = self._pcm, None
        self.available = False
        if pcm is not None:
            try:
                pcm.close()
            except alsaaudio.ALSAAudioError:
                pass
