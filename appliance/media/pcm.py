"""The appliance's PCM audio: 48 kHz, s16, 20 ms periods.

>>> import numpy as np
>>> frame = pcm_frame(np.zeros(FRAME_SAMPLES, np.int16), channels=1, pts=0)
>>> frame.samples, frame.sample_rate, frame.layout.name
(960, 48000, 'mono')
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

SAMPLE_RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
TIME_BASE = Fraction(1, SAMPLE_RATE)
# A level follows loudness over about this long (seconds).
LEVEL_SMOOTHING = 0.3


def rms(samples: np.ndarray) -> float:
    """Root mean square, in the samples' own unit (full scale is 1.0 for
    floats, 32768 for s16).

    >>> rms(np.array([0.5, -0.5])), rms(np.full(4, 16384, np.int16))
    (0.5, 16384.0)
    """
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


def smoothed_level(level: float, samples: np.ndarray | None) -> float:
    """``level`` moved one period towards the RMS of ``samples`` (s16; None is
    silence), 0..1 of full scale, smoothed over ``LEVEL_SMOOTHING``.

    >>> round(smoothed_level(0.0, np.full(FRAME_SAMPLES, 16384, np.int16)), 3)
    0.033
    """
    now = rms(samples) / 32768 if samples is not None else 0.0
    return level + (now - level) * (FRAME_SAMPLES / SAMPLE_RATE / LEVEL_SMOOTHING)


def pcm_frame(samples: bytes | np.ndarray, channels: int, pts: int) -> av.AudioFrame:
    """One period of interleaved s16 samples as an ``av.AudioFrame``."""
    frame = av.AudioFrame(format="s16", layout="mono" if channels == 1 else "stereo", samples=FRAME_SAMPLES)
    frame.planes[0].update(samples if isinstance(samples, bytes) else np.ascontiguousarray(samples, np.int16).tobytes())
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame
