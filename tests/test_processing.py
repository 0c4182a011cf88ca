"""WebRTC's audio processing (appliance.media.processing) on its own: the
echo of a simulated room cancelled period by period, and a library that
cannot load."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

from appliance.media.pcm import FRAME_SAMPLES, SAMPLE_RATE
from appliance.media.processing import AudioProcessing, ProcessingSettings
from appliance.testing.room import impulse_response, speech_like


def run(processing: AudioProcessing, far: np.ndarray, microphone: np.ndarray) -> np.ndarray:
    """Both sides period by period, as the speaker and microphone threads call them."""
    out = []
    for at in range(0, len(far) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        played = (far[at : at + FRAME_SAMPLES] * 32767).astype(np.int16)
        processing.render(np.repeat(played, 2), channels=2)
        heard = (np.clip(microphone[at : at + FRAME_SAMPLES], -1, 1) * 32767).astype(np.int16)
        out.append(np.frombuffer(processing.capture(heard.tobytes(), channels=1), np.int16))
    return np.concatenate(out) / 32768


def test_the_echo_of_the_speaker_is_cancelled_and_cpu_is_counted():
    far = speech_like(6, pitch=120, seed=1)
    echo = np.convolve(far, impulse_response(delay_ms=40, rt60=0.3, seed=7))[: len(far)]
    microphone = np.concatenate([np.zeros(SAMPLE_RATE // 10), echo])[: len(far)]  # 100 ms of buffering too
    microphone += 0.001 * np.random.default_rng(3).standard_normal(len(far))
    processing = AudioProcessing(ProcessingSettings(delay_ms=80))
    assert processing.active
    started = time.thread_time()
    out = run(processing, far, microphone)
    spent = time.thread_time() - started  # the module runs in the caller's thread
    window = slice(3 * SAMPLE_RATE, 6 * SAMPLE_RATE - FRAME_SAMPLES)  # after 2 s of convergence
    erle = 20 * np.log10(np.std(microphone[window]) / np.std(out[window]))
    assert erle >= 30, f"{erle:.1f} dB"
    # Within this thread's own time for the run (under emulation that is
    # longer than the 6 s of audio: 9.1 s on CI's machine).
    assert 0 < processing.cpu_seconds <= spent, "thread CPU time spent in the module is counted"
    processing.close()
    assert not processing.active
    assert processing.capture(b"\x01\x00" * FRAME_SAMPLES, 1) == b"\x01\x00" * FRAME_SAMPLES, "closed: passes through"


def test_all_off_runs_nothing():
    processing = AudioProcessing(ProcessingSettings(False, False, False))
    assert not processing.active
    assert processing.capture(b"\x07\x00" * FRAME_SAMPLES, 1) == b"\x07\x00" * FRAME_SAMPLES


def test_a_module_that_cannot_load_is_one_line_and_the_audio_goes_through():
    script = (
        "import logging\n"
        "logging.basicConfig(level=logging.DEBUG, format='%(levelname)s %(message)s')\n"
        "from appliance.media.processing import AudioProcessing\n"
        "p = AudioProcessing()\n"
        "data = bytes(range(256)) * 15\n"
        "assert not p.active and p.capture(data, 1) == data\n"
        "print('through')\n"
    )
    env = dict(os.environ, LIVEKIT_LIB_PATH="/nonexistent/liblivekit_ffi.so")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "through\n", done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("WARNING audio processing is off"), lines
    assert "/nonexistent/liblivekit_ffi.so" in lines[0] and "Traceback" not in done.stderr


def test_a_process_that_loaded_livekit_ends_with_its_status_and_exit_handlers_but_without_finalizing():
    # livekit's threads call into Python, and one that does so while Python
    # 3.11 finalizes is ended with pthread_exit, which aborts in Rust's frames
    # (it aborted a passed arm64 suite at its exit): end_process skips that.
    script = (
        "import atexit, sys, threading, time\n"
        "from appliance.media.processing import AudioProcessing, ProcessingSettings, end_process\n"
        "class Global:\n"
        "    def __del__(self): print('finalized', flush=True)\n"
        "last = Global()\n"
        "atexit.register(print, 'exit handlers ran')\n"
        "on = sys.argv[1] == 'on'\n"
        "assert AudioProcessing(ProcessingSettings(on, on, on)).active == on\n"
        "threading.Thread(target=lambda: (time.sleep(0.3), print('thread ended', end=' '))).start()\n"
        "print('unflushed', end=' ')\n"
        "end_process(3)\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script, "on"], capture_output=True, text=True, timeout=60)
    assert (loaded.returncode, loaded.stdout) == (3, "unflushed thread ended exit handlers ran\n"), loaded.stderr
    # Without livekit it is sys.exit: the interpreter finalizes as usual.
    plain = subprocess.run([sys.executable, "-c", script, "off"], capture_output=True, text=True, timeout=60)
    finalized = "unflushed thread ended exit handlers ran\nfinalized\n"
    assert (plain.returncode, plain.stdout) == (3, finalized), plain.stderr


def test_a_short_read_passes_through_and_a_failing_module_is_one_line(caplog):
    processing = AudioProcessing()
    short = b"\x05\x00" * 100
    assert processing.capture(short, 1) == short
    processing.render(np.zeros(10, np.int16), channels=2)  # nothing happens, nothing breaks
    assert processing.active

    class Failing:
        def process_stream(self, frame: object) -> None:
            raise RuntimeError("apm: bad frame")

        def set_stream_delay_ms(self, delay: int) -> None:
            pass

    processing._apm = Failing()  # the native module refusing a frame, as livekit raises it
    data = b"\x09\x00" * FRAME_SAMPLES
    assert processing.capture(data, 1) == data and processing.capture(data, 1) == data
    assert not processing.active
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "bad frame" in errors[0].getMessage()
