"""Remote participants in a process of their own, as the world's are, so that
the measured process (a benchmark's, a test's) sees only its own work.

    python -m appliance.testing.publishers SERVER ROOM COUNT SECONDS [WIDTH HEIGHT [FPS]]
    python -m appliance.testing.publishers tone SERVER ROOM USER HZ LEVEL SECONDS
    python -m appliance.testing.publishers clicks SERVER ROOM USER SECONDS
    python -m appliance.testing.publishers listen SERVER ROOM STREAM SECONDS

Each of COUNT users (``remote-<n>``) publishes ``remote-<n>-main``: a stamped
test pattern (default 1280x720 at 30 fps, 2 s GOP) and a tone of its own
(660 + n Hz), and plays nothing. ``tone``: USER publishes ``USER-mic``, a tone
of HZ at LEVEL (0..1 of full scale) alone, until SECONDS have passed or it is
sent SIGTERM (then it unpublishes and leaves). ``clicks``: USER publishes
``USER-mic``, a 10 ms click every ``CLICK_EVERY`` frames and silence between,
and prints ``click <monotonic time>`` as each click's frame is captured
(handed to the encoder), for measuring audio latency. ``listen``: a user
``listener`` plays STREAM and prints ``onset <monotonic time>`` when a click
(a sample above 0.1 after silence) arrives in its decoded audio.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time

import av
import numpy as np

from appliance.engine import Engine, EngineProfile, User
from appliance.media import EncoderSettings
from appliance.media.pcm import FRAME_SAMPLES
from appliance.testing import TestPatternSource, ToneSource
from appliance.testing.tone import frame_samples


async def publish(server: str, room: str, count: int, seconds: float, width: int, height: int, fps: int) -> None:
    engines, sources = [], []
    for n in range(count):
        engine = Engine.create(EngineProfile(server=server))
        engines.append(engine)
        video, audio = TestPatternSource(EncoderSettings(width, height, fps, gop=2 * fps)), ToneSource(660 + n)
        sources += [video, audio]
        await engine.login_room(room, User(f"remote-{n}", f"Remote {n}"))
        await engine.start_publishing_stream(f"remote-{n}-main", video=video, audio=audio)
    await asyncio.sleep(seconds)
    for engine in engines:
        await engine.destroy()
    for source in sources:  # the engine never closes what it was lent
        source.close()


CLICK_EVERY = 15  # frames (300 ms)


class ClickSource(ToneSource):
    """A 2 kHz click at the start of every ``CLICK_EVERY``-th frame, silence between; says when each is captured."""

    def __init__(self) -> None:
        super().__init__(2000, level=0.5)
        self.frames = 0

    async def recv(self):  # type: ignore[no-untyped-def]
        frame = await super().recv()
        click = self.frames % CLICK_EVERY == 0
        self.frames += 1
        samples = frame.to_ndarray().reshape(-1)
        samples[FRAME_SAMPLES // 2 :] = 0  # 10 ms of tone
        if not click:
            samples[:] = 0
        frame.planes[0].update(samples.tobytes())
        if click:
            print(f"click {time.monotonic():.6f}", flush=True)
        return frame


async def publish_clicks(server: str, room: str, user: str, seconds: float) -> None:
    engine = Engine.create(EngineProfile(server=server))
    clicks = ClickSource()
    await engine.login_room(room, User(user))
    await engine.start_publishing_stream(f"{user}-mic", audio=clicks)
    await asyncio.sleep(seconds)
    await engine.destroy()
    clicks.close()


async def listen(server: str, room: str, stream_id: str, seconds: float) -> None:
    engine = Engine.create(EngineProfile(server=server))
    quiet = [True]

    def sink(frame: av.AudioFrame) -> None:
        now = time.monotonic()
        samples = np.abs(frame_samples(frame))
        loud = np.flatnonzero(samples > 0.1)
        if loud.size and quiet[0]:
            print(f"onset {now - (len(samples) - loud[0]) / frame.sample_rate:.6f}", flush=True)
        quiet[0] = not loud.size or bool(samples[-frame.sample_rate // 1000 :].max() < 0.1)

    await engine.login_room(room, User("listener"))
    deadline = time.monotonic() + seconds
    while not any(s.stream_id == stream_id for s in engine.streams) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    print("ready", flush=True)
    await engine.start_playing_stream(stream_id, audio_sink=sink)
    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    await engine.destroy()


async def publish_tone(server: str, room: str, user: str, hz: float, level: float, seconds: float) -> None:
    engine = Engine.create(EngineProfile(server=server))
    tone = ToneSource(hz, level=level)
    await engine.login_room(room, User(user))
    await engine.start_publishing_stream(f"{user}-mic", audio=tone)
    # SIGTERM hangs up as a user would: the stream is unpublished, then the user leaves.
    hangup = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, hangup.set)
    try:
        await asyncio.wait_for(hangup.wait(), seconds)
    except TimeoutError:
        pass
    await engine.destroy()
    tone.close()


if __name__ == "__main__":
    if sys.argv[1] == "tone":
        server, room, user, hz, level, seconds = sys.argv[2:8]
        asyncio.run(publish_tone(server, room, user, float(hz), float(level), float(seconds)))
    elif sys.argv[1] == "listen":
        server, room, stream_id, seconds = sys.argv[2:6]
        asyncio.run(listen(server, room, stream_id, float(seconds)))
    elif sys.argv[1] == "clicks":
        server, room, user, seconds = sys.argv[2:6]
        asyncio.run(publish_clicks(server, room, user, float(seconds)))
    else:
        shape = [int(v) for v in sys.argv[5:8]]
        width, height, fps = shape + [1280, 720, 30][len(shape):]
        asyncio.run(publish(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), width, height, fps))
