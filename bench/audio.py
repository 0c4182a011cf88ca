"""Audio figures for ``make bench``.

- ``audio_latency_ms_p50`` / ``_p99``: mouth to speaker. A remote (its own
  process: ``appliance.testing.publishers clicks``) publishes a click every
  300 ms and prints when each click's frame is captured; the appliance's
  engine plays the stream into its speaker mixer, whose device (ALSA ``null``,
  wrapped) notes when the period holding each click's onset is written. The
  figure is write minus capture, at the onset's sample: Opus, the network
  through Janus, aiortc's receive path and the speaker's buffer; a real
  device's own buffer (up to ``latency_ms``) comes after it.
- ``audio_reverse_latency_ms_p50`` / ``_p99``: the other way. Clicks played
  into the private PulseAudio reach the appliance's microphone (with its
  audio processing, as deployed); the capture time of each click's onset
  (the ALSA read of its period, less the samples after the onset) to its
  onset in a remote's decoded audio (``publishers listen``, its own process):
  the capture hand-off, Opus, aiortc's send path, Janus and the remote's
  receive path.
- ``aec_erle_db`` / ``aec_cpu_per_s``: the speaker plays a far-end talker into
  the simulated room (``appliance.testing.room``: 300 ms of reverberation after
  40 ms, noise) and the microphone captures the room; echo return loss
  enhancement is the microphone's level into the processing over its level out,
  per half second from 3 s to 12 s, the median of the half seconds with echo
  in them (:func:`appliance.testing.room.erle_db`; echo cancellation, noise
  suppression and gain all on, the defaults), and the CPU seconds the module
  used per second of audio. It runs
  in a process of its own, whose ALSA devices come from a private PulseAudio.

    python -m bench.audio echo                 # the echo figures alone, as JSON
    python -m bench.audio reverse JANUS_URL    # the reverse latency alone, as JSON
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from appliance.engine import Engine, EngineProfile, User
from appliance.media.microphone import MicrophoneSettings, MicrophoneSource, open_alsa_capture
from appliance.media.pcm import FRAME_SAMPLES, SAMPLE_RATE, pcm_frame
from appliance.media.processing import AudioProcessing, ProcessingSettings, end_process
from appliance.media.speaker import Speaker, SpeakerSettings, open_alsa_playback
from appliance.testing.janus_server import LocalJanus
from appliance.testing.pulse import PrivatePulse
from appliance.testing.room import erle_db, speech_like

ROOT = Path(__file__).resolve().parent.parent
ONSET = 0.1  # a sample this loud (0..1) starts a click


class _Onsets:
    """When clicks begin in a run of periods: a sample above ``ONSET`` after quiet."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._loud = False

    def note(self, data: bytes, channels: int, start: float) -> None:
        """One period of s16 ``data`` whose first sample is at ``start`` (monotonic)."""
        samples = np.abs(np.frombuffer(data, np.int16).reshape(-1, channels)[:, 0]) / 32768
        loud = np.flatnonzero(samples > ONSET)
        if loud.size and not self._loud:
            self.times.append(start + loud[0] / SAMPLE_RATE)
        self._loud = bool(loud.size) and loud[-1] > len(samples) - SAMPLE_RATE // 1000  # still clicking at its end


class _TimedPcm:
    """The speaker's device, noting when each click's onset is written."""

    def __init__(self, pcm: Any, onsets: _Onsets) -> None:
        self._pcm, self._onsets = pcm, onsets

    def write(self, data: bytes) -> int:
        self._onsets.note(data, 2, time.monotonic())
        return self._pcm.write(data)

    def close(self) -> None:
        self._pcm.close()


def _printed_times(process: subprocess.Popen[str], word: str) -> list[float]:
    """The times ``process`` prints as ``<word> <time>`` lines, gathered by a thread as they come."""
    times: list[float] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(word + " "):
                times.append(float(line.split()[1]))

    threading.Thread(target=read, daemon=True).start()
    return times


def _latencies(name: str, starts: list[float], ends: list[float]) -> dict[str, float]:
    """Each start to the first end within 0.5 s after it (ms), the first three left out; p50 and p99."""
    latencies = []
    for start in starts:
        later = [end for end in ends if start < end < start + 0.5]
        if later:
            latencies.append((later[0] - start) * 1000)
    latencies = latencies[3:]  # while the subscription settles
    if len(latencies) < 10:
        raise RuntimeError(f"{name}: only {len(latencies)} clicks heard of {len(starts)}")
    ordered = sorted(latencies)
    return {
        f"{name}_p50": round(float(ordered[len(ordered) // 2]), 1),
        f"{name}_p99": round(float(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]), 1),
    }


async def measure_audio_latency(janus: LocalJanus, seconds: float = 15.0) -> dict[str, float]:
    room = f"bench-audio-{os.getpid()}-{time.monotonic_ns()}"
    talker = subprocess.Popen([sys.executable, "-m", "appliance.testing.publishers", "clicks", janus.url, room,
                               "talker", str(seconds + 10)], cwd=ROOT, text=True, stdout=subprocess.PIPE)
    captured = _printed_times(talker, "click")
    onsets = _Onsets()
    speaker = Speaker(SpeakerSettings(device="null"), open_pcm=lambda s: _TimedPcm(open_alsa_playback(s), onsets))
    engine = Engine.create(EngineProfile(server=janus.url))
    try:
        await engine.login_room(room, User("room-pi"))
        deadline = time.monotonic() + 20
        while not any(s.stream_id == "talker-mic" for s in engine.streams):
            if time.monotonic() > deadline:
                raise TimeoutError("the talker's stream never came")
            await asyncio.sleep(0.02)
        await engine.start_playing_stream("talker-mic", audio_sink=speaker.audio_sink("talker-mic"))
        await asyncio.sleep(seconds)
    finally:
        await engine.destroy()
        speaker.close()
        talker.kill()
        talker.wait()
    return _latencies("audio_latency_ms", captured, onsets.times)


class _TimedCapture:
    """The microphone's device, noting when each click's onset was captured."""

    def __init__(self, pcm: Any, onsets: _Onsets) -> None:
        self._pcm, self._onsets = pcm, onsets

    def read(self) -> tuple[int, bytes]:
        length, data = self._pcm.read()
        if length > 0:  # the period just read ends now
            self._onsets.note(data, 1, time.monotonic() - length / SAMPLE_RATE)
        return length, data

    def close(self) -> None:
        self._pcm.close()


def _play_clicks(stop: threading.Event) -> None:
    """A click every 300 ms into the room the microphone hears (``spk``)."""
    import alsaaudio

    pcm = alsaaudio.PCM(type=alsaaudio.PCM_PLAYBACK, rate=SAMPLE_RATE, channels=1, format=alsaaudio.PCM_FORMAT_S16_LE,
                        periodsize=FRAME_SAMPLES, periods=4, device="spk")
    t = np.arange(FRAME_SAMPLES // 2) / SAMPLE_RATE
    click = np.zeros(FRAME_SAMPLES, np.int16)
    click[: FRAME_SAMPLES // 2] = (np.sin(2 * np.pi * 2000 * t) * 0.5 * 32767).astype(np.int16)
    silence = np.zeros(FRAME_SAMPLES, np.int16)
    n = 0
    while not stop.is_set():
        pcm.write((click if n % 15 == 0 else silence).tobytes())
        n += 1
    pcm.close()


async def _reverse_in_the_room(url: str, seconds: float) -> dict[str, float]:
    room = f"bench-reverse-{os.getpid()}"
    captured = _Onsets()
    processing = AudioProcessing(ProcessingSettings())
    microphone = MicrophoneSource(MicrophoneSettings(device="mic"),
                                  open_pcm=lambda s: _TimedCapture(open_alsa_capture(s), captured), processing=processing)
    listener = subprocess.Popen([sys.executable, "-m", "appliance.testing.publishers", "listen", url, room,
                                 "room-pi-mic", str(seconds + 15)], cwd=ROOT, text=True, stdout=subprocess.PIPE)
    heard = _printed_times(listener, "onset")
    stop = threading.Event()
    clicks = threading.Thread(target=_play_clicks, args=(stop,), daemon=True)
    clicks.start()
    engine = Engine.create(EngineProfile(server=url))
    try:
        await engine.login_room(room, User("room-pi"))
        await engine.start_publishing_stream("room-pi-mic", audio=microphone)
        await asyncio.sleep(seconds)
    finally:
        await engine.destroy()
        stop.set()
        clicks.join(2)
        microphone.close()
        processing.close()
        listener.kill()
        listener.wait()
    return _latencies("audio_reverse_latency_ms", captured.times, heard)


class _Recorded(AudioProcessing):
    """The processing, keeping what goes into it from the microphone and what comes out."""

    def __init__(self, settings: ProcessingSettings) -> None:
        super().__init__(settings)
        self.before: list[bytes] = []
        self.after: list[bytes] = []

    def capture(self, data: bytes, channels: int) -> bytes:
        out = super().capture(data, channels)
        self.before.append(data)
        self.after.append(out)
        return out


async def _echo_in_the_room(seconds: float) -> dict[str, float]:
    processing = _Recorded(ProcessingSettings(delay_ms=80))
    speaker = Speaker(SpeakerSettings(device="loudspeaker"), processing=processing)
    microphone = MicrophoneSource(MicrophoneSettings(device="mic"), processing=processing)
    far = (speech_like(seconds, pitch=120, seed=1) * 32767).astype(np.int16)
    sink = speaker.audio_sink("far")

    async def drain() -> None:
        while True:
            await microphone.recv()

    draining = asyncio.create_task(drain())
    started = time.monotonic()
    for n in range(len(far) // FRAME_SAMPLES):
        sink(pcm_frame(far[n * FRAME_SAMPLES : (n + 1) * FRAME_SAMPLES], 1, n * FRAME_SAMPLES))
        await asyncio.sleep(max(0.0, started + (n + 1) * FRAME_SAMPLES / SAMPLE_RATE - time.monotonic()))
    elapsed = time.monotonic() - started
    draining.cancel()
    microphone.close()
    speaker.close()
    cpu = processing.cpu_seconds
    processing.close()
    periods = SAMPLE_RATE // 2 // FRAME_SAMPLES  # half a second

    def blocks(recorded: list[bytes]) -> list[np.ndarray]:
        return [np.frombuffer(b"".join(recorded[start : start + periods]), np.int16) / 32768
                for start in range(3 * 2 * periods, len(processing.after) - periods + 1, periods)]

    erle, _ = erle_db(blocks(processing.before), blocks(processing.after))
    return {"aec_erle_db": erle, "aec_cpu_per_s": round(cpu / elapsed, 4)}


def _in_a_process(*args: str, timeout: float = 120) -> dict[str, float]:
    """Figures from ``python -m bench.audio ARGS`` (its ALSA devices are a private PulseAudio's)."""
    done = subprocess.run([sys.executable, "-m", "bench.audio", *args], cwd=ROOT, text=True, capture_output=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"bench.audio {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def measure_echo_cancellation() -> dict[str, float]:
    return _in_a_process("echo")


def measure_reverse_latency(janus: LocalJanus) -> dict[str, float]:
    return _in_a_process("reverse", janus.url)


def _with_a_room(work: str, url: str = "") -> int:
    pulse = PrivatePulse()
    pulse.start()
    os.environ["ALSA_CONFIG_PATH"] = str(pulse.asound_conf)
    try:
        if work == "echo":
            room = subprocess.Popen([sys.executable, "-m", "appliance.testing.room", "--speaker", "speaker_monitor",
                                     "--microphone", "spk"], cwd=ROOT, text=True, stdout=subprocess.PIPE)
            try:
                assert room.stdout is not None and room.stdout.readline() == "ready\n"
                figures = asyncio.run(_echo_in_the_room(12.0))
            finally:
                room.terminate()
                room.wait(5)
        else:
            figures = asyncio.run(_reverse_in_the_room(url, 15.0))
    finally:
        pulse.close()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] not in (["echo"], ["reverse"]):
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    end_process(_with_a_room(sys.argv[1], *sys.argv[2:3]))
