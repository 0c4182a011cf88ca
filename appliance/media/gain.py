"""Automatic gain for the room's microphone, after echo cancellation.

It lifts a room whose talkers reach the microphone quietly towards
:data:`TARGET_DBFS` (ITU-T P.56's nominal active speech level) and never
cuts: a microphone set once for the room (``alsamixer``) passes untouched.

Why not WebRTC's: livekit's module turns on AGC2's adaptive digital
controller with its defaults and offers no settings. It starts 15 dB up and
comes down only on speech, so until somebody in the room speaks it lifts what
the canceller leaves of the echo by 15 dB, and the room's first talker goes
into its limiter for 2-3 s (docs/performance.md). This one:

- starts at 0 dB, and lifts only after it has heard the room's speech quieter
  than the target;
- counts a frame as speech when it stands :data:`SPEECH_OVER_FLOOR_DB` over
  the noise floor (and over :data:`SPEECH_MIN_DBFS`) while the speaker has
  been quiet for the echo's delay and :data:`FAR_END_TAIL_S` more, so the
  echo's remains are never taken for a talker;
- moves :data:`SLEW_DB_PER_S` at most, ramped sample by sample, and never
  lifts the noise floor above :data:`NOISE_CEILING_DBFS`;
- gives a frame whose peak it would lift past :data:`PEAK` less gain at once.

Example, a quiet talker (-49 dBFS) lifted 3 dB a second:

>>> import numpy as np
>>> gain = GainControl()
>>> talker = (0.005 * np.sin(np.arange(480) * 0.3) * 32767).astype(np.int16).tobytes()
>>> silence = bytes(960)
>>> for _ in range(300):  # 3 s: speech, then a pause, so the floor is known
...     _ = gain.process(silence if _ % 10 == 0 else talker, far_end_talking=False)
>>> round(gain.gain_db, 1)
9.0
>>> gain.process(talker, far_end_talking=False) != talker
True
"""

from __future__ import annotations

import numpy as np

from .pcm import rms

TARGET_DBFS = -26.0  # speech's RMS while talking
MAX_GAIN_DB = 24.0
SLEW_DB_PER_S = 3.0
SPEECH_OVER_FLOOR_DB = 10.0
SPEECH_MIN_DBFS = -60.0  # quieter is not a talker worth lifting
NOISE_CEILING_DBFS = -55.0  # the lifted noise floor stays under this
FLOOR_RISE_DB_PER_S = 1.0  # the floor follows a quieter frame at once, a louder one slowly
SPEECH_SMOOTHING = 0.05  # per speech frame: about 0.2 s of speech to settle
FAR_END_DBFS = -50.0  # the speaker plays something audible
FAR_END_TAIL_S = 0.5  # after the echo's delay: a room's reverberation, with a margin
PEAK = 10 ** (-1 / 20)  # -1 dBFS
SILENT_DBFS = -90.0


def level_dbfs(samples: np.ndarray) -> float:
    """RMS of float samples (full scale 1.0), in dBFS; -90 for silence."""
    level = rms(samples) if len(samples) else 0.0
    return max(SILENT_DBFS, 20 * np.log10(level)) if level > 0 else SILENT_DBFS


class GainControl:
    """The gain; one per microphone, called from its thread with 10 ms frames
    (s16, interleaved). ``gain_db`` is the gain it has reached."""

    def __init__(self, frame_seconds: float = 0.01) -> None:
        self.gain_db = 0.0
        self._applied = 1.0  # the linear gain the last frame ended on
        self._floor_db: float | None = None
        self._speech_db: float | None = None
        self._slew = SLEW_DB_PER_S * frame_seconds
        self._rise = FLOOR_RISE_DB_PER_S * frame_seconds

    def process(self, frame: bytes, far_end_talking: bool) -> bytes:
        """The frame with the gain applied. ``far_end_talking``: the speaker
        played something audible (:data:`FAR_END_DBFS`) recently enough for
        its echo to be in the frame."""
        samples = np.frombuffer(frame, np.int16).astype(np.float32) / 32768
        if not len(samples):
            return frame
        level = level_dbfs(samples)
        self._floor_db = level if self._floor_db is None else min(level, self._floor_db + self._rise)
        if not far_end_talking and level > max(self._floor_db + SPEECH_OVER_FLOOR_DB, SPEECH_MIN_DBFS):
            self._speech_db = level if self._speech_db is None else (
                self._speech_db + SPEECH_SMOOTHING * (level - self._speech_db))
        wanted = 0.0
        if self._speech_db is not None:
            wanted = min(TARGET_DBFS - self._speech_db, MAX_GAIN_DB, NOISE_CEILING_DBFS - self._floor_db)
            wanted = max(0.0, wanted)
        self.gain_db += float(np.clip(wanted - self.gain_db, -self._slew, self._slew))
        target = 10 ** (self.gain_db / 20)
        highest = max(target, self._applied)  # a ramp starts where the last frame ended
        if highest == 1.0:
            return frame  # 0 dB, as for a microphone set for the room
        peak = float(np.max(np.abs(samples)))
        gains: np.ndarray | float
        if peak * highest > PEAK:  # at once, for the whole frame; never below 0 dB
            target = max(1.0, min(target, PEAK / peak))
            if target == 1.0 == self._applied:
                return frame
            gains = target
        else:
            gains = np.linspace(self._applied, target, len(samples), endpoint=False, dtype=np.float32)
        self._applied = target
        return (np.clip(samples * gains, -1, 32767 / 32768) * 32768).astype(np.int16).tobytes()
