"""A meeting room in software, for the echo canceller's tests and benchmarks.

Far-end and near-end talkers are speech-like signals (:func:`speech_like`:
a voiced source at a talker's pitch, through vowel formants that change every
syllable, in syllables and pauses). :class:`SpeechSource` plays one into a
call in real time. The room itself runs as its own process
(``python -m appliance.testing.room``) between two ALSA devices: it reads what
the appliance's speaker plays, convolves it with a room impulse response
(:func:`impulse_response`: a direct path after ``delay_ms``, then a
reverberant tail decaying 60 dB in ``rt60`` seconds), adds the near-end
talker (from when it gets SIGUSR1) and noise, and writes the sum to the
device the appliance's microphone captures, 10 ms at a time.

>>> voice = speech_like(1.0, pitch=120, seed=1)
>>> voice.dtype, len(voice), 0.05 < rms(voice) < 0.3
(dtype('float64'), 48000, True)
>>> h = impulse_response(delay_ms=40, rt60=0.3, seed=1)
>>> int(np.argmax(np.abs(h))) == 40 * 48
True
>>> spectral_correlation(0.5 * voice[1000:25000], voice) > 0.99  # found 1000 samples in
True
>>> spectral_correlation(voice[:24000], speech_like(1.0, pitch=210, seed=2)) < 0.3  # another talker
True
>>> echo = [0.1 * voice[:24000], 0.001 * voice[24000:]]  # the far end talks, then pauses
>>> erle_db(echo, [0.001 * voice[:24000], 0.001 * voice[24000:]])
(40.0, [40.0])
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import av
import numpy as np

from ..media.pcm import FRAME_SAMPLES, SAMPLE_RATE, pcm_frame, rms
from .pacing import Pacer

BLOCK = SAMPLE_RATE // 100  # the room runs 10 ms at a time
NEAR_PITCH, NEAR_SEED = 210, 2  # the near-end talker (the far end's tests choose their own)
ALIGN_STEP = SAMPLE_RATE // 1000  # 1 ms: how finely spectral_correlation aligns
ALIGN_SEARCH = 30 * ALIGN_STEP  # either side of the loudness envelopes' lag
ECHO_PRESENT = 0.01  # RMS: a block has echo when it is this loud (20 dB over the room's default noise)
# (F1, F2, F3) of a few vowels, Hz.
VOWELS = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410)]


def speech_like(seconds: float, pitch: float, seed: int, level: float = 0.2) -> np.ndarray:
    """A talker: float samples in [-1, 1] at 48 kHz, RMS about ``level`` while talking."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = pitch * (1 + 0.08 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6)) + 0.02 * np.sin(2 * np.pi * 5.3 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    # Syllables of 120-280 ms, a short gap after each, and a pause now and then.
    envelope = np.zeros(n)
    formants = np.zeros((n, 3))
    at = 0
    while at < n:
        length = int(rng.uniform(0.12, 0.28) * SAMPLE_RATE)
        end = min(n, at + length)
        envelope[at:end] = np.sin(np.pi * np.arange(end - at) / length) ** 0.5
        formants[at:end] = VOWELS[rng.integers(len(VOWELS))]
        at = end + int((rng.uniform(0.4, 0.8) if rng.random() < 0.15 else rng.uniform(0.02, 0.06)) * SAMPLE_RATE)
    formants[envelope == 0] = VOWELS[0]
    voice = np.zeros(n)
    for k in range(1, int(4000 / pitch)):
        frequency = k * f0
        gain = sum(np.exp(-(((frequency - formants[:, i]) / (80 + 40 * i)) ** 2)) / (i + 1) for i in range(3))
        voice += np.sin(k * phase) * (gain + 0.02) / np.sqrt(k)
    voice += 0.05 * rng.standard_normal(n)  # breath: broadband, as real voices have
    voice *= envelope
    talking = envelope > 0.1
    return voice * (level / max(1e-9, rms(voice[talking])))


def impulse_response(delay_ms: float, rt60: float, seed: int, gain: float = 0.25) -> np.ndarray:
    """A room's impulse response from the speaker to the microphone. With
    the default ``gain`` a talker played at the speaker reaches the
    microphone about 8 dB below a talker of the same level in the room (a
    screen two metres from the table's microphone, people at a metre)."""
    rng = np.random.default_rng(seed)
    delay = int(delay_ms * SAMPLE_RATE / 1000)
    tail = np.arange(int(rt60 * SAMPLE_RATE)) / SAMPLE_RATE
    reverb = rng.standard_normal(len(tail)) * np.exp(-6.91 * tail / rt60) * 0.08
    response = np.zeros(delay + len(tail))
    response[delay:] = reverb
    response[delay] = 1.0
    return gain * response


def _spectra(x: np.ndarray) -> np.ndarray:
    """Short-time magnitude spectra: 20 ms frames, 100 Hz to 4 kHz."""
    frames = x[: len(x) // FRAME_SAMPLES * FRAME_SAMPLES].reshape(-1, FRAME_SAMPLES) * np.hanning(FRAME_SAMPLES)
    return np.abs(np.fft.rfft(frames, axis=1))[:, 2:80]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    count = min(len(a), len(b))
    a, b = a[:count].ravel() - a[:count].mean(), b[:count].ravel() - b[:count].mean()
    denominator = np.sqrt(float(a @ a) * float(b @ b))
    return float(a @ b / denominator) if denominator else 0.0


def _envelope(x: np.ndarray) -> np.ndarray:
    """Loudness per :data:`ALIGN_STEP`, its mean removed."""
    steps = x[: len(x) // ALIGN_STEP * ALIGN_STEP].reshape(-1, ALIGN_STEP)
    envelope = np.sqrt(np.mean(np.square(steps), axis=1))
    return envelope - envelope.mean()


def spectral_correlation(signal: np.ndarray, reference: np.ndarray) -> float:
    """How much of ``reference`` (a talker) is in ``signal``: the correlation
    of their short-time magnitude spectra (20 ms frames, 100 Hz to 4 kHz),
    ``signal`` aligned where its spectra best match the reference's.

    Audio processing changes a waveform's phase (the high-pass filter) and
    its level from moment to moment (noise suppression, gain) without
    changing what is said; spectra keep what is said and drop the phase. It
    also delays it (livekit's module: about 23 ms), and a processed waveform's
    cross-correlation with the clean one can peak a pitch period or more off
    (measured: 15 ms off, which read 0.76 where the right lag reads 0.84).
    So the lag comes from the loudness envelopes (1 ms steps), then the
    spectra are compared at each step within :data:`ALIGN_SEARCH` of it and
    the best counts. ``signal`` must start inside ``reference``.
    """
    size = 1 << int(np.ceil(np.log2(len(reference) + len(signal)) - np.log2(ALIGN_STEP)))
    cross = np.fft.irfft(np.fft.rfft(_envelope(reference), size) * np.conj(np.fft.rfft(_envelope(signal), size)), size)
    coarse = int(np.argmax(cross[: max(1, (len(reference) - len(signal)) // ALIGN_STEP + 1)])) * ALIGN_STEP
    ours = _spectra(signal)
    lags = range(max(0, coarse - ALIGN_SEARCH), coarse + ALIGN_SEARCH + 1, ALIGN_STEP)
    return max(_pearson(ours, _spectra(reference[lag : lag + len(signal)])) for lag in lags
               if len(reference) - lag >= FRAME_SAMPLES)


def erle_db(echo: list[np.ndarray], residual: list[np.ndarray]) -> tuple[float, list[float]]:
    """Echo return loss enhancement: for each block, the echo's level over
    what is left of it after processing (dB), and the median over the blocks.
    Only blocks with echo in them count (``echo`` at least
    :data:`ECHO_PRESENT`): in the far end's pauses both are the room's noise,
    and their ratio says nothing about the echo. Returns the median and the
    blocks that counted.
    """
    blocks = [20 * float(np.log10(rms(e) / max(1e-9, rms(r)))) for e, r in zip(echo, residual, strict=True)
              if rms(e) >= ECHO_PRESENT]
    return (round(float(np.median(blocks)), 1) if blocks else float("nan")), [round(b, 1) for b in blocks]


class SpeechSource:
    """An audio source playing ``samples`` (float, 48 kHz) once, then silence, in real time."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        self.muted = False  # sends silence, like a muted microphone
        self.closed = False
        self.started: float | None = None  # when the first frame went out (monotonic)
        self._at = 0
        self._pacer = Pacer(FRAME_SAMPLES / SAMPLE_RATE)

    async def recv(self) -> av.AudioFrame:
        if self.closed:
            raise ConnectionError("speech source is closed")
        await self._pacer.wait()
        if self.started is None:
            self.started = time.monotonic()
        chunk = self.samples[self._at : self._at + FRAME_SAMPLES]
        chunk = np.concatenate([chunk, np.zeros(FRAME_SAMPLES - len(chunk), np.int16)])
        frame = pcm_frame(np.zeros_like(chunk) if self.muted else chunk, 1, self._at)
        self._at += FRAME_SAMPLES
        return frame

    def close(self) -> None:
        self.closed = True


def run_room(speaker: str, microphone: str, delay_ms: float, rt60: float, noise: float, near: np.ndarray) -> None:
    """The room's loop (see the module docs) until SIGTERM."""
    import alsaaudio

    def pcm(kind: int, device: str) -> alsaaudio.PCM:
        return alsaaudio.PCM(type=kind, mode=alsaaudio.PCM_NORMAL, rate=SAMPLE_RATE, channels=1,
                             format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=BLOCK, periods=10, device=device)

    response = impulse_response(delay_ms, rt60, seed=7)
    size = 1 << int(np.ceil(np.log2(len(response) + BLOCK)))
    response_spectrum = np.fft.rfft(response, size)
    tail = np.zeros(size)
    rng = np.random.default_rng(11)
    talking: list[int] = []  # where the near-end talker is, once started
    running = [True]
    signal.signal(signal.SIGUSR1, lambda *_: talking.append(0) if not talking else None)
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    hears, says = pcm(alsaaudio.PCM_CAPTURE, speaker), pcm(alsaaudio.PCM_PLAYBACK, microphone)
    says.write(bytes(BLOCK * 2 * 5))  # headroom against a late block
    print("ready", flush=True)
    while running[0]:
        length, data = hears.read()
        if length <= 0:
            continue
        block = np.frombuffer(data, np.int16)[:BLOCK].astype(np.float64) / 32768
        block = np.pad(block, (0, BLOCK - len(block)))
        tail += np.fft.irfft(np.fft.rfft(block, size) * response_spectrum, size)
        out, tail = tail[:BLOCK].copy(), np.concatenate([tail[BLOCK:], np.zeros(BLOCK)])
        out += noise * rng.standard_normal(BLOCK)
        if talking:
            at = talking[0]
            part = near[at : at + BLOCK]
            out[: len(part)] += part
            talking[0] = at + BLOCK
        says.write((np.clip(out, -1, 1) * 32767).astype(np.int16).tobytes())
    hears.close()
    says.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speaker", required=True, help="ALSA capture device that hears the appliance's speaker")
    parser.add_argument("--microphone", required=True, help="ALSA playback device the appliance's microphone captures")
    parser.add_argument("--delay-ms", type=float, default=40)
    parser.add_argument("--rt60", type=float, default=0.3)
    parser.add_argument("--noise", type=float, default=0.001, help="noise RMS, 0..1 of full scale")
    parser.add_argument("--near-seconds", type=float, default=5)
    args = parser.parse_args(argv)
    near = speech_like(args.near_seconds, pitch=NEAR_PITCH, seed=NEAR_SEED)
    run_room(args.speaker, args.microphone, args.delay_ms, args.rt60, args.noise, near)
    return 0


if __name__ == "__main__":
    sys.exit(main())
