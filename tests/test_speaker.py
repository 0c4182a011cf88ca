"""The speaker: remote tones through a real Janus, mixed into an ALSA file device."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import av
import numpy as np

from appliance.engine import PlayerState, User
from appliance.engine.tracks import mono_to_stereo
from appliance.media.speaker import Speaker, SpeakerSettings

from .conftest import profile_for

RATE = 48000


def tone_level(samples: np.ndarray, frequency: float) -> float:
    """The amplitude (0..1 of full scale) of ``frequency`` in mono ``samples``."""
    window = np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(samples * window)) * 2 / window.sum()
    index = round(frequency * len(samples) / RATE)
    return float(spectrum[index - 2 : index + 3].max())


def steady_level(samples: np.ndarray, frequency: float, block: int = RATE // 10) -> float:
    """The median over 100 ms blocks of ``frequency``'s amplitude: a gain, not
    thrown off by the odd gap where a stream's audio arrived late (under
    emulation a few blocks in ten)."""
    return float(np.median([tone_level(samples[i : i + block], frequency)
                            for i in range(0, len(samples) - block + 1, block)]))


def tone_process(janus, room_id: str, user: str, hz: float, level: float) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    return subprocess.Popen([sys.executable, "-m", "appliance.testing.publishers", "tone", janus.url, room_id, user,
                             str(hz), str(level), "600"])


def read_mono(path, channels: int = 2) -> np.ndarray:
    data = np.frombuffer(path.read_bytes(), np.int16).astype(np.float64) / 32768
    return data.reshape(-1, channels).mean(axis=1)


async def test_two_remote_tones_mixed_at_their_levels_and_a_stopped_one_goes_at_once(janus, room_id, engines, tmp_path,
                                                                                    request):
    out = tmp_path / "speaker.raw"
    speaker = Speaker(SpeakerSettings(device=f"file:FILE={out},FORMAT=raw"))
    # The two remotes in processes of their own, as the world's are: their
    # encoders do not take the measured process's time.
    alice = tone_process(janus, room_id, "alice", 440, 0.25)
    carol = tone_process(janus, room_id, "carol", 660, 0.15)
    request.addfinalizer(lambda: [process.kill() for process in (alice, carol)])
    bob, rec_bob = engines(profile_for(janus))
    await bob.login_room(room_id, User("bob"))
    await rec_bob.wait_for(lambda: len(bob.streams) == 2, timeout=60, what="both streams")
    for stream in ("alice-mic", "carol-mic"):
        await bob.start_playing_stream(stream, audio_sink=speaker.audio_sink(stream))
    await rec_bob.wait_for(lambda: all(bob.player_state(s) is PlayerState.PLAYING for s in ("alice-mic", "carol-mic")))
    await asyncio.sleep(2.0)
    # Both surely play before alice is told to leave: her sound stops before
    # Janus tells bob, and under emulation well before.
    leaving_at = speaker.periods_written
    alice.terminate()  # alice leaves, her stream with her
    await rec_bob.wait_for(lambda: bob.player_state("alice-mic") is PlayerState.REQUESTING, what="alice's stream gone")
    removed_at = speaker.periods_written
    speaker.remove_stream("alice-mic")
    await bob.stop_playing_stream("alice-mic")
    await asyncio.sleep(1.0)
    speaker.close()
    carol.terminate()
    for process in (alice, carol):
        process.wait()

    mono = read_mono(out)
    period = 960
    both = mono[(leaving_at - 50) * period : leaving_at * period]  # one second with both playing
    assert abs(steady_level(both, 440) - 0.25) < 0.05, "alice at her level"
    assert abs(steady_level(both, 660) - 0.15) < 0.05, "carol at hers"
    after = mono[(removed_at + 1) * period : (removed_at + 26) * period]  # from the next period on
    assert tone_level(after, 440) < 0.005, "nothing stale of alice after her stream stopped"
    assert abs(steady_level(after, 660) - 0.15) < 0.05, "carol goes on"
    around = mono[(removed_at - 5) * period : (removed_at + 10) * period]
    steepest = 2 * np.pi * (440 * 0.25 + 660 * 0.15) / RATE  # the two sines' own largest step
    assert np.abs(np.diff(around)).max() < 2 * steepest, "alice fades out: no click"


def test_mix_bounds_latency_and_applies_volume():
    speaker = Speaker(SpeakerSettings(device="null", latency_ms=60, volume=0.5))
    feed = speaker.audio_sink("a")
    speaker.close()  # mix by hand from here on
    frame = av.AudioFrame.from_ndarray(np.full((1, 960 * 2), 20000, np.int16), format="s16", layout="stereo")
    frame.sample_rate = RATE
    for _ in range(10):  # 200 ms arrive at once (a jitter burst)
        feed(frame)
    periods = [speaker.mix() for _ in range(5)]
    assert [int(p.min()) for p in periods[:3]] == [10000] * 3 and [int(p.max()) for p in periods[:3]] == [10000] * 3, \
        "only 60 ms kept, volume 0.5"
    fade = periods[3].reshape(-1, 2)[:, 0]
    assert fade[0] > 9900 and fade[-1] == 0 and (np.diff(fade.astype(int)) <= 0).all(), "running dry fades out"
    assert not periods[4].any(), "then silence"


def test_a_burst_that_overflows_the_buffer_is_cut_without_a_click():
    speaker = Speaker(SpeakerSettings(device="null", latency_ms=60))
    feed = speaker.audio_sink("a")
    speaker.close()  # mix by hand from here on
    level, frequency = 0.5, 440
    t = np.arange(20 * 960) / RATE
    sine = (level * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)

    def send(n: int) -> None:
        frame = av.AudioFrame.from_ndarray(np.repeat(sine[n * 960:(n + 1) * 960], 2)[None, :], format="s16",
                                           layout="stereo")
        frame.sample_rate = RATE
        feed(frame)

    send(0), send(1)
    played = [speaker.mix()]
    for n in range(2, 12):  # 200 ms arrive at once: 140 ms of them are dropped
        send(n)
    played += [speaker.mix() for _ in range(3)]
    left = np.concatenate(played).reshape(-1, 2)[:, 0].astype(np.float64) / 32768
    steepest = 2 * np.pi * frequency * level / RATE
    assert np.abs(np.diff(left)).max() < 2 * steepest, "the dropped audio's edges are cross-faded"


def test_mono_sources_keep_their_level_in_stereo():
    tone = np.full((1, 960), 12000, np.int16)
    frame = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
    frame.sample_rate, frame.pts = RATE, 960
    stereo = mono_to_stereo(frame)
    assert stereo.layout.name == "stereo" and stereo.samples == 960 and stereo.pts == 960
    assert set(stereo.to_ndarray().reshape(-1).tolist()) == {12000}, "no -3 dB centre mix"
