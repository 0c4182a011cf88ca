"""The room's speaker: every played stream's audio, mixed, to one ALSA device.

Each played stream gets a sink; its frames are converted to 48 kHz s16 and
cut into 20 ms periods. A playback thread takes one period from every stream
each 20 ms, mixes them with the volume applied and writes the result. A stream
holds at most ``latency_ms`` of audio: when a stream runs ahead (network
jitter), its oldest audio is dropped, so the delay stays bounded, and the
audio on either side of the gap is cross-faded over one period. A stream that
has nothing contributes silence (an underrun of its own never stalls the
others), reached and left with a short fade rather than a click. A removed stream's audio goes at once, faded out over one
period so it ends without a click: nothing stale is played after it stops. Underruns of the device itself are recovered; an
unplugged device is reopened when it returns. With :class:`~appliance.media.processing.AudioProcessing`
lent to it, every period written is also handed to the echo canceller.

Example, mixing by hand (``start()`` runs the thread that writes to ALSA):

>>> import asyncio
>>> from appliance.testing import ToneSource
>>> speaker = Speaker(SpeakerSettings(device="null"))
>>> sink = speaker.audio_sink("alice-main")  # give it to start_playing_stream
>>> sink(asyncio.run(ToneSource(440, channels=2).recv()))
>>> speaker.mix().shape
(1920,)
>>> sorted(speaker.levels())  # each stream's loudness as mixed, for the metrics
['alice-main']
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import alsaaudio
import av
import numpy as np

from .alsadevice import ReopeningDevice
from .pcm import FRAME_SAMPLES, SAMPLE_RATE, smoothed_level
from .processing import AudioProcessing

log = logging.getLogger(__name__)

PERIOD = FRAME_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True)
class SpeakerSettings:
    """``device`` is an ALSA PCM name; HDMI on a Pi is usually
    ``plughw:CARD=vc4hdmi0,DEV=0`` (see ``appliance devices``)."""

    device: str = "default"
    channels: int = 2
    latency_ms: int = 60
    volume: float = 1.0
    reopen_interval: float = 1.0


def open_alsa_playback(settings: SpeakerSettings) -> Any:
    return alsaaudio.PCM(
        type=alsaaudio.PCM_PLAYBACK,
        mode=alsaaudio.PCM_NORMAL,
        rate=SAMPLE_RATE,
        channels=settings.channels,
        format=alsaaudio.PCM_FORMAT_S16_LE,
        periodsize=FRAME_SAMPLES,
        periods=max(2, settings.latency_ms * SAMPLE_RATE // 1000 // FRAME_SAMPLES),
        device=settings.device,
    )


class _StreamBuffer:
    """One stream's audio, converted and cut into periods (bounded).

    When the stream runs dry (its sender stopped, or the network stalls) the
    last period is played once more backwards and faded out, so the sound
    ends where it was instead of jumping to zero (a click); when it comes
    back, the first period fades in. When it runs ahead and its oldest period
    is dropped, the period that would have followed the last one played is
    cross-faded into the one that now follows it, so the cut does not click.
    """

    def __init__(self, channels: int, max_periods: int) -> None:
        layout = "mono" if channels == 1 else "stereo"
        self._resampler = av.AudioResampler(format="s16", layout=layout, rate=SAMPLE_RATE)
        self._channels = channels
        self._pending = np.zeros(0, np.int16)
        self._last: np.ndarray | None = None
        self._dry = False
        self._bridge: np.ndarray | None = None  # the dropped period that continued the last one played
        ramp = np.linspace(0.0, 1.0, FRAME_SAMPLES)
        self._fade_in = np.repeat(ramp, channels)
        self.fade_out = np.repeat(ramp[::-1], channels)
        self.periods: deque[np.ndarray] = deque(maxlen=max_periods)
        self.level = 0.0  # RMS, 0..1 of full scale, smoothed

    def next_period(self) -> np.ndarray | None:
        """The next period to mix (int32), or None for silence."""
        if self.periods:
            period = self.periods.popleft().astype(np.int32)
            if self._dry:
                period = (period * self._fade_in).astype(np.int32)
                self._dry = False
            elif self._bridge is not None:
                period = (self._bridge * self.fade_out + period * self._fade_in).astype(np.int32)
            self._bridge = None
            self._last = period
            return period
        if self._last is None:
            return None
        backwards = self._last.reshape(-1, self._channels)[::-1].reshape(-1)
        self._last, self._dry = None, True
        return (backwards * self.fade_out).astype(np.int32)

    def add(self, frame: av.AudioFrame) -> None:
        for converted in self._resampler.resample(frame):
            samples = converted.to_ndarray().reshape(-1)
            self._pending = np.concatenate([self._pending, samples])
        size = FRAME_SAMPLES * self._channels
        while len(self._pending) >= size:
            if len(self.periods) == self.periods.maxlen:
                dropped = self.periods.popleft()
                if self._bridge is None and self._last is not None:
                    self._bridge = dropped
            self.periods.append(self._pending[:size])
            self._pending = self._pending[size:]


class Speaker:
    """Mixes the played streams' audio to one ALSA device; see the module docs.

    ``open_pcm`` opens the device (``alsaaudio.PCM`` by default).
    """

    def __init__(
        self,
        settings: SpeakerSettings = SpeakerSettings(),
        open_pcm: Callable[[SpeakerSettings], Any] = open_alsa_playback,
        processing: AudioProcessing | None = None,
    ) -> None:
        self.settings = settings
        self.processing = processing  # lent: hears every period written, for echo cancellation
        self.volume = settings.volume
        self.periods_written = 0
        self.underruns = 0
        self._open_pcm = open_pcm
        self._streams: dict[str, _StreamBuffer] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._max_periods = max(1, settings.latency_ms * SAMPLE_RATE // 1000 // FRAME_SAMPLES)
        self._fading: list[np.ndarray] = []

    def audio_sink(self, stream_id: str) -> Callable[[av.AudioFrame], None]:
        """The sink for one played stream; starts playback on first use."""
        self.start()
        with self._lock:
            buffer = self._streams.setdefault(stream_id, _StreamBuffer(self.settings.channels, self._max_periods))

        def sink(frame: av.AudioFrame) -> None:
            with self._lock:
                if self._streams.get(stream_id) is buffer:
                    buffer.add(frame)

        return sink

    def remove_stream(self, stream_id: str) -> None:
        """Drops the stream and what of it is still buffered; its next period
        is faded out so that it ends without a click."""
        with self._lock:
            buffer = self._streams.pop(stream_id, None)
            if buffer is not None:
                last = buffer.next_period()
                if last is not None:
                    self._fading.append((last * buffer.fade_out).astype(np.int32))

    def levels(self) -> dict[str, float]:
        """Each played stream's loudness as it is mixed: RMS, 0..1 of full
        scale, smoothed over about 300 ms; before the volume."""
        with self._lock:
            return {stream_id: buffer.level for stream_id, buffer in self._streams.items()}

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._play, name="speaker", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def mix(self) -> np.ndarray:
        """The next period: one period of every stream, summed, volume applied."""
        mixed = np.zeros(FRAME_SAMPLES * self.settings.channels, np.int32)
        with self._lock:
            for buffer in self._streams.values():
                period = buffer.next_period()
                if period is not None:
                    mixed += period
                buffer.level = smoothed_level(buffer.level, period)
            for fading in self._fading:
                mixed += fading
            self._fading.clear()
        if self.volume != 1.0:
            mixed = (mixed * self.volume).astype(np.int32)
        return np.clip(mixed, -32768, 32767).astype(np.int16)

    def _play(self) -> None:
        s = self.settings
        device = ReopeningDevice("speaker", s.device, lambda: self._open_pcm(s), s.reopen_interval)
        next_time = time.monotonic()
        latency = s.latency_ms / 1000
        while not self._stop.is_set():
            period = self.mix()
            pcm = device.get()
            if pcm is not None:
                try:
                    written = pcm.write(period.tobytes())
                except alsaaudio.ALSAAudioError as exc:
                    device.lost(exc)
                else:
                    if written < 0:  # an underrun the driver reported; ALSA recovers on the next write
                        self.underruns += 1
                    self.periods_written += 1
                    if self.processing is not None:
                        self.processing.render(period, s.channels)
            # A real device paces us by blocking in write; a device that does
            # not (or no device at all) must not make us run ahead of real time.
            next_time = max(next_time + PERIOD, time.monotonic() - latency)
            ahead = next_time - time.monotonic() - latency
            if ahead > 0:
                time.sleep(ahead)
        device.close()
