"""The synthetic microphone: a sine tone in 20 ms frames, and an FFT check.

Example:

>>> import asyncio
>>> import numpy as np
>>> async def one_second():
...     source = ToneSource(440)
...     return [await source.recv() for _ in range(50)]
>>> frames = asyncio.run(one_second())
>>> frames[0].samples, frames[0].format.name, frames[0].layout.name
(960, 's16', 'mono')
>>> round(dominant_frequency(np.concatenate([frame_samples(f) for f in frames])))
440
"""

from __future__ import annotations

import av
import numpy as np

from ..media.pcm import FRAME_SAMPLES, SAMPLE_RATE, pcm_frame
from .pacing import Pacer


class ToneSource:
    """An audio source: a continuous sine tone, paced in real time."""

    def __init__(self, frequency: float = 440.0, level: float = 0.3, channels: int = 1) -> None:
        self.frequency = frequency
        self.level = level
        self.channels = channels
        self.muted = False  # sends silence, like a muted microphone
        self.closed = False
        self._samples = 0
        self._pacer = Pacer(FRAME_SAMPLES / SAMPLE_RATE)

    async def recv(self) -> av.AudioFrame:
        if self.closed:
            raise ConnectionError("tone source is closed")
        await self._pacer.wait()
        t = (self._samples + np.arange(FRAME_SAMPLES)) / SAMPLE_RATE
        level = 0.0 if self.muted else self.level
        wave = (np.sin(2 * np.pi * self.frequency * t) * level * 32767).astype(np.int16)
        frame = pcm_frame(np.repeat(wave, self.channels), self.channels, self._samples)
        self._samples += FRAME_SAMPLES
        return frame

    def close(self) -> None:
        self.closed = True


def frame_samples(frame: av.AudioFrame) -> np.ndarray:
    """A frame's samples as float mono in [-1, 1], whatever its format."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        mono = data.astype(np.float64).mean(axis=0)
    else:
        mono = data.reshape(-1, channels).astype(np.float64).mean(axis=1)
    scale = 32768.0 if data.dtype == np.int16 else 1.0
    return mono / scale


def dominant_frequency(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """The frequency (Hz) with the most energy, from a Hann-windowed FFT."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * sample_rate / len(samples))
