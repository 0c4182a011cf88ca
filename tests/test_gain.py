"""The microphone's gain control (appliance.media.gain): a quiet room lifted,
a loud one untouched, the echo's remains never lifted, peaks held, noise kept
down; and wired into the audio processing with the speaker as its far end."""

from __future__ import annotations

import numpy as np

from appliance.media.gain import MAX_GAIN_DB, NOISE_CEILING_DBFS, PEAK, TARGET_DBFS, GainControl, level_dbfs
from appliance.media.pcm import FRAME_SAMPLES, SAMPLE_RATE
from appliance.media.processing import AudioProcessing, ProcessingSettings
from appliance.testing.room import speech_like

FRAME = SAMPLE_RATE // 100  # what the processing hands it: 10 ms


def frames(samples: np.ndarray) -> list[bytes]:
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    return [pcm[at : at + FRAME].tobytes() for at in range(0, len(pcm) - FRAME + 1, FRAME)]


def run(gain: GainControl, samples: np.ndarray, far_end_talking: bool = False) -> np.ndarray:
    out = [gain.process(frame, far_end_talking) for frame in frames(samples)]
    return np.frombuffer(b"".join(out), np.int16) / 32768


def speech_level(samples: np.ndarray) -> float:
    """dBFS over the 10 ms frames with a talker in them."""
    talking = [f for f in samples[: len(samples) // FRAME * FRAME].reshape(-1, FRAME) if level_dbfs(f) > -70]
    return level_dbfs(np.concatenate(talking))


def test_a_loud_room_passes_untouched_and_a_quiet_one_is_lifted_to_the_target():
    loud = speech_like(4, pitch=210, seed=2, level=0.2)  # -14 dBFS: a microphone set hot
    gain = GainControl()
    assert b"".join(gain.process(f, False) for f in frames(loud)) == b"".join(frames(loud))
    assert gain.gain_db == 0

    quiet = speech_like(12, pitch=210, seed=2, level=0.01)  # -40 dBFS
    gain = GainControl()
    out = run(gain, quiet)
    assert 0 < gain.gain_db <= MAX_GAIN_DB
    last = slice(8 * SAMPLE_RATE, 12 * SAMPLE_RATE)
    lifted = speech_level(out[last]) - speech_level(quiet[last])
    assert abs(lifted - gain.gain_db) < 1.5, "what it says it applies is what it applies"
    assert TARGET_DBFS - 3 <= speech_level(out[last]) <= TARGET_DBFS + 3, f"{speech_level(out[last]):.1f} dBFS"


def test_the_echo_s_remains_are_never_lifted_while_the_far_end_talks():
    remains = speech_like(8, pitch=120, seed=1, level=0.003)  # what the canceller leaves: -50 dBFS
    gain = GainControl()
    out = run(gain, remains, far_end_talking=True)
    assert gain.gain_db == 0 and np.array_equal(out, np.frombuffer(b"".join(frames(remains)), np.int16) / 32768)
    run(gain, remains, far_end_talking=False)
    assert gain.gain_db > 10, "the same level in the room (the far end quiet) is lifted"


def test_a_sudden_loud_talker_is_held_under_the_peak_at_once():
    gain = GainControl()
    run(gain, speech_like(10, pitch=210, seed=2, level=0.005))
    assert gain.gain_db > 15
    shout = speech_like(1, pitch=150, seed=4, level=0.15)
    assert np.abs(shout).max() < PEAK, "at 0 dB it would pass untouched"
    out = run(gain, shout)
    assert np.abs(out).max() <= PEAK + 1 / 32768
    assert np.abs(out).max() > 0.5 * PEAK, "held at the peak, not silenced"


def test_noise_is_not_lifted_over_the_ceiling():
    rng = np.random.default_rng(5)
    noise = 0.00056 * rng.standard_normal(12 * SAMPLE_RATE)  # -65 dBFS
    quiet = speech_like(12, pitch=210, seed=2, level=0.005) + noise  # -46 dBFS over it
    gain = GainControl()
    run(gain, quiet)
    assert 0 < gain.gain_db <= NOISE_CEILING_DBFS - (-65) + 1, f"{gain.gain_db:.1f} dB over a -65 dBFS floor"


def test_the_processing_lifts_a_quiet_room_only_while_the_speaker_is_quiet():
    quiet = speech_like(6, pitch=210, seed=2, level=0.01)
    loud_far = (speech_like(6, pitch=120, seed=1, level=0.2) * 32767).astype(np.int16)

    def through(processing: AudioProcessing, speaker_plays: bool) -> np.ndarray:
        out = []
        for at in range(0, len(quiet) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            if speaker_plays:
                processing.render(np.repeat(loud_far[at : at + FRAME_SAMPLES], 2), channels=2)
            heard = (quiet[at : at + FRAME_SAMPLES] * 32767).astype(np.int16)
            out.append(np.frombuffer(processing.capture(heard.tobytes(), channels=1), np.int16))
        return np.concatenate(out) / 32768

    last = slice(4 * SAMPLE_RATE, 6 * SAMPLE_RATE)
    settings = ProcessingSettings(echo_cancellation=False, noise_suppression=False, auto_gain=True)
    processing = AudioProcessing(settings)
    lifted = speech_level(through(processing, speaker_plays=False)[last]) - speech_level(quiet[last])
    processing.close()
    processing = AudioProcessing(settings)
    held = speech_level(through(processing, speaker_plays=True)[last]) - speech_level(quiet[last])
    processing.close()
    processing = AudioProcessing(ProcessingSettings(echo_cancellation=True, noise_suppression=False, auto_gain=False))
    off = speech_level(through(processing, speaker_plays=False)[last]) - speech_level(quiet[last])
    processing.close()
    assert lifted > 6, f"{lifted:.1f} dB"
    assert abs(held) < 1, f"{held:.1f} dB while the speaker played"
    assert abs(off) < 1, f"{off:.1f} dB with auto_gain off"
