"""``appliance demo``: the whole appliance and a remote participant on a local Janus.

The appliance runs as ``appliance run`` would, with the synthetic camera (a
stamped H.264 test pattern), a 440 Hz tone for a microphone and mock GPIO
pins; it joins by itself. A remote participant publishes its own pattern and a
660 Hz tone and plays the appliance. Once a second the demo prints the
appliance's state and what the remote receives (frames, the frame number read
back from the picture and its age, the dominant audio frequency). The screen
goes to a desktop window when there is one, otherwise to ``demo-screens/screen.png``
every two seconds. Runs inside ``scripts/netns`` (``make demo`` does that).
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import time
from collections import deque
from pathlib import Path

import av
import numpy as np

from ..engine.engine import Engine
from ..engine.profile import EngineProfile, RoomConfig, Stream, User
from ..engine.states import UpdateType
from ..media.encoder import EncoderSettings
from . import netns
from .janus_server import LocalJanus
from .testpattern import TestPatternSource, read_stamp
from .tone import ToneSource, dominant_frequency, frame_samples
from .webclient import WebClientServer

log = logging.getLogger(__name__)



class ReceiveReport:
    """Sinks that keep what a participant needs to say what it receives."""

    def __init__(self) -> None:
        self.frames = 0
        self.size = (0, 0)
        self.frame_number: int | None = None
        self.age_ms: float | None = None
        self._audio: deque[np.ndarray] = deque(maxlen=50)

    def video(self, frame: av.VideoFrame) -> None:
        self.frames += 1
        self.size = (frame.width, frame.height)
        stamp = read_stamp(frame)
        if stamp is not None:
            self.frame_number, self.age_ms = stamp.frame_number, stamp.age_ms()

    def audio(self, frame: av.AudioFrame) -> None:
        self._audio.append(frame_samples(frame))

    def line(self) -> str:
        tone = f"{dominant_frequency(np.concatenate(self._audio)):.0f} Hz" if len(self._audio) >= 25 else "-"
        if self.frame_number is None:
            return f"{self.frames} frames, audio {tone}"
        return (
            f"{self.frames} frames {self.size[0]}x{self.size[1]}, picture #{self.frame_number} "
            f"{self.age_ms:.0f} ms old, audio {tone}"
        )


async def _participant(
    janus: LocalJanus, room_id: str, user: User, tone_hz: float, report: ReceiveReport
) -> Engine:
    engine = Engine.create(EngineProfile(server=janus.url))
    name = user.user_name

    def on_state(room: str, state: object, code: object, extended: dict[str, object]) -> None:
        print(f"[{name}] room {room}: {getattr(state, 'value', state)} ({extended['reason'].value})", flush=True)  # type: ignore[attr-defined]

    async def on_streams(room: str, update: UpdateType, streams: list[Stream]) -> None:
        for stream in streams:
            print(f"[{name}] stream {update.value}: {stream.stream_id}", flush=True)
            if update is UpdateType.ADD:
                await engine.start_playing_stream(stream.stream_id, report.video, report.audio)
            else:
                await engine.stop_playing_stream(stream.stream_id)

    engine.on("room_state_update", on_state)
    engine.on("room_stream_update", on_streams)
    engine.on("room_user_update", lambda room, update, users: print(
        f"[{name}] users {update.value}: {', '.join(u.user_id for u in users)}", flush=True))
    engine.on("publisher_state_update", lambda sid, state, code, ext: print(
        f"[{name}] publishing {sid}: {state.value}", flush=True))
    engine.on("player_state_update", lambda sid, state, code, ext: print(
        f"[{name}] playing {sid}: {state.value}", flush=True))
    await engine.login_room(room_id, user, RoomConfig(is_user_status_notify=True))
    await engine.start_publishing_stream(
        f"{user.user_id}-main", video=TestPatternSource(EncoderSettings()), audio=ToneSource(tone_hz)
    )
    return engine


def synthetic_config(
    url: str,
    room: str,
    control_socket: Path,
    *,
    auto_join: bool = True,
    output: str = "headless",
    screen: tuple[int, int, int] = (1920, 1080, 60),
    camera: tuple[int, int, int] = (1280, 720, 30),
    user: tuple[str, str] = ("room-pi", "Room Pi"),
    sources: tuple[str, str] = ("test", "tone"),
) -> str:
    """The configuration of an appliance with the synthetic camera and
    microphone (``sources``; ``"none"`` turns one off) and no speaker (the
    demo, the benchmarks and the tests)."""
    return f"""
[server]
url = "{url}"
[room]
id = "{room}"
user_id = "{user[0]}"
user_name = "{user[1]}"
auto_join = {str(auto_join).lower()}
[camera]
source = "{sources[0]}"
width = {camera[0]}
height = {camera[1]}
fps = {camera[2]}
gop = {camera[2] * 2}
[microphone]
source = "{sources[1]}"
[speaker]
enabled = false
[screen]
output = "{output}"
width = {screen[0]}
height = {screen[1]}
fps = {screen[2]}
[control]
socket = "{control_socket}"
"""


async def run_demo(seconds: float, screenshots: Path = Path("demo-screens")) -> int:
    """The whole appliance (synthetic camera and microphone, mock GPIO) and a
    remote participant, on a local Janus; prints what happens."""
    if not netns.inside():
        print("appliance demo: run it in the private network namespace: `make demo`")
        return 69  # EX_UNAVAILABLE
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")  # buttons work, on pretend pins
    from ..app.config import load_config
    from ..app.daemon import Daemon

    window = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    with LocalJanus() as janus, tempfile.TemporaryDirectory() as workdir:
        print(f"Janus running at {janus.url}", flush=True)
        path = Path(workdir) / "appliance.toml"
        path.write_text(synthetic_config(janus.url, "demo", Path(workdir) / "control.sock",
                                         output="window" if window else "headless", screen=(1280, 720, 15),
                                         user=("room-42", "Room 42")))
        appliance = Daemon(load_config(path), path)
        appliance_task = asyncio.create_task(appliance.run(), name="appliance")
        report = ReceiveReport()
        remote = await _participant(janus, "demo", User("remote", "Remote"), 660, report)
        try:
            web: WebClientServer | None = WebClientServer()
            print(f"Join from a browser in this namespace: {web.url}?server={janus.url}&room=demo&user=guest", flush=True)
        except FileNotFoundError as exc:
            web = None
            print(f"(no browser page: {exc})", flush=True)
        screenshots.mkdir(exist_ok=True)
        last_status = ""
        try:
            started = time.monotonic()
            tick = 0
            while not seconds or time.monotonic() - started < seconds:
                await asyncio.sleep(1)
                tick += 1
                status = appliance.status_line()
                if status != last_status:
                    print(f"[appliance] {status}", flush=True)
                    last_status = status
                print(f"[Remote] receives: {report.line()}", flush=True)
                if not window and tick % 2 == 0:
                    png = await asyncio.to_thread(appliance.screen.screenshot_png)
                    await asyncio.to_thread((screenshots / "screen.png").write_bytes, png)
            if not window:
                print(f"[appliance] the screen is in {screenshots / 'screen.png'} (refreshed every 2 s)", flush=True)
        finally:
            if web is not None:
                web.close()
            await remote.destroy()
            appliance.stop()
            await appliance_task
    return 0
