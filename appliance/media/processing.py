"""Echo cancellation, noise suppression and gain for the room's microphone.

WebRTC's audio processing module (AEC3, noise suppression, high-pass filter)
in process, from the ``livekit`` package's prebuilt native library, then our
own gain control (:mod:`appliance.media.gain`: the module's lifts the echo). The
speaker hands it every period exactly as written to ALSA (the echo's source:
the *render* side, :meth:`AudioProcessing.render`); the microphone hands it
every period it captured and sends what comes back (:meth:`AudioProcessing.capture`).
Both run in their own threads, never on the event loop: a native call is a
few tens of microseconds per 10 ms frame, and livekit's FFI takes requests
from any thread (each is synchronous, in the caller's thread). One lock
serialises the two sides, so a frame of one is never processed while the
other changes the delay.

If the library cannot load, one line says so and the audio goes through
unprocessed. A process that may have loaded it ends with :func:`end_process`.

Example, a period through it (silence stays silence):

>>> import numpy as np
>>> processing = AudioProcessing(ProcessingSettings(delay_ms=80))
>>> processing.render(np.zeros(FRAME_SAMPLES * 2, np.int16), channels=2)
>>> processing.capture(bytes(FRAME_SAMPLES * 2), channels=1) == bytes(FRAME_SAMPLES * 2)
True
>>> processing.close()
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from .gain import FAR_END_DBFS, FAR_END_TAIL_S, GainControl, level_dbfs
from .pcm import FRAME_SAMPLES, SAMPLE_RATE

log = logging.getLogger(__name__)

SPLIT = SAMPLE_RATE // 100  # the module takes 10 ms frames; a period is two


@dataclass(frozen=True)
class ProcessingSettings:
    """What to run, and ``delay_ms``: from a period written to the speaker
    until its echo is read from the microphone (playback and capture
    buffering plus the air; the canceller searches around it)."""

    echo_cancellation: bool = True
    noise_suppression: bool = True
    auto_gain: bool = True
    delay_ms: int = 80

    @property
    def any(self) -> bool:
        return self.echo_cancellation or self.noise_suppression or self.auto_gain


class AudioProcessing:
    """WebRTC's audio processing between the speaker and the microphone; see the module docs.

    ``cpu_seconds`` is the thread CPU time spent in the module (both sides).
    """

    def __init__(self, settings: ProcessingSettings = ProcessingSettings()) -> None:
        self.settings = settings
        self.cpu_seconds = 0.0
        self._lock = threading.Lock()
        self._rtc: Any = None
        self._apm: Any = None
        self._gain = GainControl(SPLIT / SAMPLE_RATE) if settings.auto_gain else None
        self._far_end_at = float("-inf")  # monotonic: when the speaker last played something audible
        self._echo_lasts = settings.delay_ms / 1000 + FAR_END_TAIL_S
        if settings.any:
            try:
                from livekit import rtc

                # Its gain control (AGC2) stays off: ours (appliance.media.gain) does not lift the echo.
                self._apm = rtc.AudioProcessingModule(
                    echo_cancellation=settings.echo_cancellation, noise_suppression=settings.noise_suppression,
                    high_pass_filter=True, auto_gain_control=False,
                )
                self._rtc = rtc
            except Exception as exc:  # ImportError, or OSError from the native library
                log.warning("audio processing is off (the microphone is sent as captured): livekit's audio "
                            "processing did not load: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    @property
    def active(self) -> bool:
        """True when the module runs (something is on and the library loaded)."""
        return self._apm is not None

    def render(self, period: np.ndarray, channels: int) -> None:
        """A period as it is written to the speaker (s16, interleaved)."""
        if self._apm is None:
            return
        period = np.ascontiguousarray(period, np.int16)
        if self._gain is not None and level_dbfs(period.astype(np.float32) / 32768) > FAR_END_DBFS:
            self._far_end_at = time.monotonic()
        self._run(bytearray(period.tobytes()), channels, reverse=True)

    def capture(self, data: bytes, channels: int) -> bytes:
        """A period as the microphone captured it; returns it processed."""
        if self._apm is None:
            return data
        buffer = bytearray(data)
        self._run(buffer, channels, reverse=False)
        return bytes(buffer)

    def _run(self, data: bytearray, channels: int, reverse: bool) -> None:
        size = SPLIT * channels * 2
        if len(data) != FRAME_SAMPLES * channels * 2:
            return  # a short read: passed on as it is
        started = time.thread_time()
        far_end_talking = time.monotonic() - self._far_end_at < self._echo_lasts
        with self._lock:
            apm = self._apm
            if apm is None:
                return
            try:
                for offset in range(0, len(data), size):
                    # A bytearray of its own (livekit copies a sliced view): the module works on it in place.
                    chunk = bytearray(data[offset : offset + size])
                    frame = self._rtc.AudioFrame(chunk, SAMPLE_RATE, channels, SPLIT)
                    if reverse:
                        apm.process_reverse_stream(frame)
                    else:
                        if self.settings.echo_cancellation:
                            apm.set_stream_delay_ms(self.settings.delay_ms)
                        apm.process_stream(frame)
                        if self._gain is not None:
                            chunk = self._gain.process(bytes(chunk), far_end_talking)
                        data[offset : offset + size] = chunk
            except Exception as exc:  # the audio must keep flowing: once, and unprocessed from then on
                log.error("audio processing failed; the microphone is sent as captured from now on: %s", exc)
                self._apm = None
            # Under the lock: the speaker's and the microphone's threads both add to it.
            self.cpu_seconds += time.thread_time() - started

    def close(self) -> None:
        """Releases the native module; later periods pass through untouched."""
        with self._lock:
            self._apm = None  # the last reference: its native handle is dropped with it


def livekit_loaded() -> bool:
    """True once this process has imported livekit (an :class:`AudioProcessing` that runs)."""
    return "livekit.rtc" in sys.modules


def end_process(code: int) -> NoReturn:
    """Ends the process with exit status ``code``; once livekit is loaded, without finalizing.

    livekit's native runtime has threads of its own that call into Python (it
    forwards its log records, one of them written while its exit handler
    disposes of it). Python 3.11 ends a thread that does so while the
    interpreter finalizes with ``pthread_exit``, and that unwinding through
    livekit's Rust frames can abort the process (SIGABRT after everything
    else went well: a failed unit at ``systemctl stop``). So once livekit is
    loaded, what the interpreter does first at exit is done here (wait for
    the threads that are not daemons, run the exit handlers: livekit's,
    ``logging``'s), and the process ends there, before finalization;
    otherwise this is ``sys.exit(code)``.
    """
    if not livekit_loaded():
        sys.exit(code)
    threading._shutdown()  # type: ignore[attr-defined]  # the interpreter's own first step at exit
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed, or a reader gone: nothing more to say there
            pass
    os._exit(code)
