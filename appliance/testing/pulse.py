"""A private PulseAudio with null sinks, reached through ALSA's pulse plugin.

ALSA devices made from it run in real time (unlike the ``file`` plugin):
``spk`` plays into the null sink ``room``, ``mic`` captures its monitor, so a
tone played to ``spk`` is what the microphone hears. Stopping the server is
what an unplugged USB speakerphone looks like to ALSA.

For a simulated room (:mod:`appliance.testing.room`) the speaker plays into
a sink of its own instead: ``loudspeaker`` plays into ``speaker``, which the
room hears on ``speaker_monitor``; the room says what the microphone hears
into ``spk`` (the sink ``room``, captured by ``mic``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


class PrivatePulse:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="appliance-pulse-"))
        self.socket = self.dir / "native"
        (self.dir / "default.pa").write_text(
            "load-module module-null-sink sink_name=room rate=48000 channels=2\n"
            "load-module module-null-sink sink_name=speaker rate=48000 channels=2\n"
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
        )
        server = f'server "unix:{self.socket}"'
        self.asound_conf = self.dir / "asound.conf"
        self.asound_conf.write_text(
            f'pcm.mic {{ type pulse {server} device "room.monitor" }}\n'
            f'pcm.spk {{ type pulse {server} device "room" }}\n'
            f'pcm.loudspeaker {{ type pulse {server} device "speaker" }}\n'
            f'pcm.speaker_monitor {{ type pulse {server} device "speaker.monitor" }}\n'
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, HOME=str(self.dir), PULSE_RUNTIME_PATH=str(self.dir / "runtime"))
        self._process = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit",
             "--system=false", "-F", str(self.dir / "default.pa"), f"--log-target=file:{self.dir / 'pulse.log'}"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pulseaudio did not start: {(self.dir / 'pulse.log').read_text(errors='replace')}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        self.socket.unlink(missing_ok=True)

    def close(self) -> None:
        """Stops the server for good and removes its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
