"""The room's microphone: an ALSA capture device through pyalsaaudio.

A capture thread reads 20 ms periods at 48 kHz and hands them to asyncio
through a bounded :class:`~appliance.media.handoff.Handoff`. Overruns are counted and
logged once per burst; they are never fatal. When the device goes away (a USB
speakerphone unplugged) the source says so once, sends silence so the stream
stays up, and reopens the device when it is back. Mute sends silence too.
With :class:`~appliance.media.processing.AudioProcessing` lent to it, each
period is processed (echo cancelled, noise suppressed, gain set) in the
capture thread before it is sent.

Example, on ALSA's ``null`` device (silence):

>>> import asyncio
>>> async def first_frame():
...     mic = MicrophoneSource(MicrophoneSettings(device="null"))
...     try:
...         return await mic.recv()
...     finally:
...         mic.close()
>>> frame = asyncio.run(first_frame())
>>> frame.samples, frame.sample_rate
(960, 48000)
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import alsaaudio
import av
import numpy as np

from .alsadevice import ReopeningDevice
from .handoff import Handoff
from .pcm import FRAME_SAMPLES, SAMPLE_RATE, pcm_frame, smoothed_level
from .processing import AudioProcessing

log = logging.getLogger(__name__)

# Clean periods after which an overrun starts a new burst (1 s).
BURST_GAP = SAMPLE_RATE // FRAME_SAMPLES


@dataclass(frozen=True)
class MicrophoneSettings:
    """``device`` is an ALSA PCM name (``default``, ``plughw:CARD=...``)."""

    device: str = "default"
    channels: int = 1
    reopen_interval: float = 1.0
    queue_periods: int = 10


class CapturePcm(Protocol):
    """What the source uses of ``alsaaudio.PCM``."""

    def read(self) -> tuple[int, bytes]: ...

    def close(self) -> None: ...


def open_alsa_capture(settings: MicrophoneSettings) -> CapturePcm:
    return alsaaudio.PCM(  # type: ignore[no-any-return]
        type=alsaaudio.PCM_CAPTURE,
        mode=alsaaudio.PCM_NORMAL,
        rate=SAMPLE_RATE,
        channels=settings.channels,
        format=alsaaudio.PCM_FORMAT_S16_LE,
        periodsize=FRAME_SAMPLES,
        periods=4,
        device=settings.device,
    )


class MicrophoneSource:
    """An audio source reading an ALSA capture device; see the module docs.

    ``open_pcm`` opens the device (``alsaaudio.PCM`` by default).
    """

    def __init__(
        self,
        settings: MicrophoneSettings = MicrophoneSettings(),
        open_pcm: Callable[[MicrophoneSettings], CapturePcm] = open_alsa_capture,
        processing: AudioProcessing | None = None,
    ) -> None:
        self.settings = settings
        self.processing = processing  # lent: echo cancellation, noise suppression, gain
        self.muted = False
        self.overruns = 0
        self.closed = False
        self.level = 0.0  # what is captured (after processing, before mute): RMS 0..1, smoothed
        self._open_pcm = open_pcm
        self._silence = bytes(FRAME_SAMPLES * 2 * settings.channels)
        self._samples = 0
        self._handoff: Handoff[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._device: ReopeningDevice | None = None

    @property
    def available(self) -> bool:
        """True while the device is open and delivering sound."""
        return self._device is not None and self._device.available

    @property
    def dropped(self) -> int:
        """Periods dropped because nobody read them in time."""
        return self._handoff.dropped if self._handoff is not None else 0

    def start(self) -> None:
        """Starts capturing; ``recv`` does it on first use."""
        if self._thread is None:
            self._handoff = Handoff(asyncio.get_running_loop(), self.settings.queue_periods)
            self._thread = threading.Thread(target=self._capture, name="microphone", daemon=True)
            self._thread.start()

    async def recv(self) -> av.AudioFrame:
        if self.closed:
            raise ConnectionError("microphone source is closed")
        self.start()
        assert self._handoff is not None
        data = await self._handoff.get()
        frame = pcm_frame(self._silence if self.muted else data, self.settings.channels, self._samples)
        self._samples += FRAME_SAMPLES
        return frame

    def close(self) -> None:
        self.closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    # -- capture thread -----------------------------------------------------

    def _capture(self) -> None:
        device = ReopeningDevice("microphone", self.settings.device,
                                 lambda: self._open_pcm(self.settings), self.settings.reopen_interval)
        self._device = device
        clean = BURST_GAP
        burst = 0
        # A read may return less than a period (a device going away, some
        # drivers at times): periods are cut from what has been read.
        pending = b""
        period = len(self._silence)
        while not self._stop.is_set():
            pcm = device.get()
            if pcm is None:
                pending = b""
                self._put(self._silence)  # keep the stream alive while the device is away
                time.sleep(FRAME_SAMPLES / SAMPLE_RATE)
                continue
            try:
                length, data = pcm.read()
            except alsaaudio.ALSAAudioError as exc:
                device.lost(exc)
                continue
            if length == -errno.EPIPE:
                self.overruns += 1
                burst += 1
                if clean >= BURST_GAP:
                    log.warning("microphone %r overrun: audio was lost (counting until it is clean for 1 s)",
                                self.settings.device)
                clean = 0
                continue
            if length <= 0:
                continue
            clean += 1
            if clean == BURST_GAP and burst:
                log.info("microphone %r: the overrun burst lost %d periods", self.settings.device, burst)
                burst = 0
            pending += data
            while len(pending) >= period:
                chunk, pending = pending[:period], pending[period:]
                if self.processing is not None:
                    chunk = self.processing.capture(chunk, self.settings.channels)
                self.level = smoothed_level(self.level, np.frombuffer(chunk, np.int16))
                self._put(chunk)
        device.close()

    def _put(self, data: bytes) -> None:
        assert self._handoff is not None
        self._handoff.put(data)
