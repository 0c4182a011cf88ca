"""The ALSA microphone source on real ALSA devices (a private PulseAudio)."""

from __future__ import annotations

import logging
import threading
import time

import alsaaudio
import av
import numpy as np

from appliance.engine import PublisherState, User
from appliance.media.microphone import MicrophoneSettings, MicrophoneSource, open_alsa_capture
from appliance.testing import dominant_frequency
from appliance.testing.tone import frame_samples

from .conftest import profile_for


class TonePlayer:
    """Plays a sine tone to the ALSA device ``spk`` from a thread, in real time."""

    def __init__(self, frequency: float) -> None:
        self.frequency = frequency
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)

    def _play(self) -> None:
        pcm = alsaaudio.PCM(type=alsaaudio.PCM_PLAYBACK, rate=48000, channels=1,
                            format=alsaaudio.PCM_FORMAT_S16_LE, periodsize=960, periods=4, device="spk")
        n = 0
        while not self._stop.is_set():
            t = (n + np.arange(960)) / 48000
            pcm.write((np.sin(2 * np.pi * self.frequency * t) * 0.5 * 32767).astype(np.int16).tobytes())
            n += 960
        pcm.close()

    def __enter__(self) -> TonePlayer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


async def heard(source: MicrophoneSource, periods: int = 50) -> float:
    frames = [await source.recv() for _ in range(periods)]
    return dominant_frequency(np.concatenate([frame_samples(f) for f in frames[-25:]]))


async def test_microphone_tone_goes_through_janus(pulse, janus, room_id, engines):
    a, rec_a = engines(profile_for(janus))
    b, rec_b = engines(profile_for(janus))
    mic = MicrophoneSource(MicrophoneSettings(device="mic"))
    with TonePlayer(523):
        await a.login_room(room_id, User("room-pi"))
        await a.start_publishing_stream("room-pi-mic", audio=mic)
        await rec_a.wait_for(lambda: a.publisher_state("room-pi-mic") is PublisherState.PUBLISHING)
        await b.login_room(room_id, User("remote"))
        received: list[av.AudioFrame] = []
        await b.start_playing_stream("room-pi-mic", audio_sink=received.append)
        await rec_b.wait_for(lambda: len(received) >= 100, what="2 s of audio")
    samples = np.concatenate([frame_samples(f) for f in received[50:100]])
    assert abs(dominant_frequency(samples) - 523) <= 2
    assert mic.overruns == 0
    mic.close()


class OverrunningPcm:
    """The real ALSA device, except that reads ``first`` to ``last`` report an
    overrun the way pyalsaaudio does (-EPIPE): no sound card here overruns."""

    def __init__(self, settings: MicrophoneSettings, first: int, last: int) -> None:
        self._pcm = open_alsa_capture(settings)
        self._reads = 0
        self._first, self._last = first, last

    def read(self) -> tuple[int, bytes]:
        self._reads += 1
        if self._first <= self._reads <= self._last:
            self._pcm.read()
            return -32, b""
        return self._pcm.read()

    def close(self) -> None:
        self._pcm.close()


async def test_overruns_are_counted_logged_once_and_not_fatal(pulse, caplog):
    mic = MicrophoneSource(MicrophoneSettings(device="mic"), open_pcm=lambda s: OverrunningPcm(s, 10, 14))
    try:
        with TonePlayer(440):
            frames = [await mic.recv() for _ in range(60)]
            assert abs(await heard(mic) - 440) <= 2, "capture goes on after the overruns"
    finally:
        mic.close()
    assert mic.overruns == 5
    overrun_lines = [r for r in caplog.records if "overrun" in r.getMessage() and r.levelno >= logging.WARNING]
    assert len(overrun_lines) == 1, "one line per burst"
    assert len(frames) == 60


async def test_unplug_is_reported_silence_is_sent_and_replug_reopens(pulse, caplog):
    mic = MicrophoneSource(MicrophoneSettings(device="mic", reopen_interval=0.2))
    try:
        with TonePlayer(440):
            assert abs(await heard(mic) - 440) <= 2
        pulse.stop()  # the device disappears
        frames = [await mic.recv() for _ in range(25)]
        assert not mic.available
        assert max(float(np.abs(frame_samples(f)).max()) for f in frames[-10:]) == 0, "silence keeps the stream up"
        assert sum("is gone" in r.getMessage() for r in caplog.records) == 1
        pulse.start()  # plugged in again
        with TonePlayer(660):
            for _ in range(200):
                await mic.recv()
                if mic.available:
                    break
            assert mic.available
            assert abs(await heard(mic, 75) - 660) <= 2
        assert sum("is back" in r.getMessage() for r in caplog.records) == 1
    finally:
        mic.close()


async def test_mute_sends_silence_and_keeps_the_stream(pulse):
    mic = MicrophoneSource(MicrophoneSettings(device="mic"))
    try:
        with TonePlayer(440):
            assert abs(await heard(mic) - 440) <= 2
            mic.muted = True
            frames = [await mic.recv() for _ in range(10)]
            assert all(float(np.abs(frame_samples(f)).max()) == 0 for f in frames)
            mic.muted = False
            assert abs(await heard(mic) - 440) <= 2
    finally:
        mic.close()


async def test_missing_device_is_reported_once(caplog):
    mic = MicrophoneSource(MicrophoneSettings(device="no_such_device", reopen_interval=0.05))
    try:
        frames = [await mic.recv() for _ in range(15)]
    finally:
        mic.close()
    assert len(frames) == 15 and not mic.available
    lines = [r.getMessage() for r in caplog.records if "cannot be opened" in r.getMessage()]
    assert len(lines) == 1 and "no_such_device" in lines[0]


class ShortReadsPcm:
    """A capture device whose reads return 300, 660, then 960 frames, in turn (a ramp of samples)."""

    def __init__(self, settings: MicrophoneSettings) -> None:
        self.sizes = [300, 660, 960]
        self.reads = 0
        self.next = 0

    def read(self) -> tuple[int, bytes]:
        size = self.sizes[self.reads % 3]
        self.reads += 1
        samples = (np.arange(self.next, self.next + size) % 30000).astype(np.int16)
        self.next += size
        time.sleep(size / 48000)
        return size, samples.tobytes()

    def close(self) -> None:
        pass


async def test_short_reads_are_cut_into_whole_periods_without_losing_a_sample():
    mic = MicrophoneSource(MicrophoneSettings(device="short"), open_pcm=ShortReadsPcm)
    try:
        frames = [await mic.recv() for _ in range(10)]
    finally:
        mic.close()
    assert {f.samples for f in frames} == {960}
    samples = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    assert np.array_equal(samples, (np.arange(9600) % 30000).astype(np.int16)), "in order, none lost or repeated"
