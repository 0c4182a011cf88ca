"""``appliance demo``: a local Janus and two simulated participants.

Both log in to one room, publish the synthetic camera (H.264 test pattern) and
microphone (a tone, 440 Hz and 660 Hz), play each other and print once a second
what each receives: frames, the frame number read back from the picture, its
age, and the dominant audio frequency. Runs inside ``scripts/netns`` (``make
demo`` does that).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque

import av
import numpy as np

from .encoder import EncoderSettings
from .engine import Engine
from .janus_server import LocalJanus
from .profile import EngineProfile, RoomConfig, Stream, User
from .states import UpdateType
from .testpattern import TestPatternSource, read_stamp
from .tone import ToneSource, dominant_frequency, frame_samples

log = logging.getLogger(__name__)

NETNS_INTERFACES = {"lo", "v0", "v1"}


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


async def run_demo(seconds: float) -> int:
    interfaces = {name for _, name in socket.if_nameindex()}
    if interfaces != NETNS_INTERFACES:
        print("appliance demo: run it in the private network namespace: `make demo`")
        return 69  # EX_UNAVAILABLE
    with LocalJanus(ice_interfaces=["v0"]) as janus:
        print(f"Janus running at {janus.url}", flush=True)
        reports = {"Room 42": ReceiveReport(), "Remote": ReceiveReport()}
        engines = [
            await _participant(janus, "demo", User("room-42", "Room 42"), 440, reports["Room 42"]),
            await _participant(janus, "demo", User("remote", "Remote"), 660, reports["Remote"]),
        ]
        try:
            started = time.monotonic()
            while not seconds or time.monotonic() - started < seconds:
                await asyncio.sleep(1)
                for name, report in reports.items():
                    print(f"[{name}] receives: {report.line()}", flush=True)
        finally:
            for engine in engines:
                await engine.destroy()
    return 0
