"""Remote participants in a process of their own, as the world's are, so that
the measured process (a benchmark's, a test's) sees only its own work.

    python -m appliance.testing.publishers SERVER ROOM COUNT SECONDS [WIDTH HEIGHT [FPS]]
    python -m appliance.testing.publishers tone SERVER ROOM USER HZ LEVEL SECONDS

Each of COUNT users (``remote-<n>``) publishes ``remote-<n>-main``: a stamped
test pattern (default 1280x720 at 30 fps, 2 s GOP) and a tone of its own
(660 + n Hz), and plays nothing. ``tone``: USER publishes ``USER-mic``, a tone
of HZ at LEVEL (0..1 of full scale) alone, until SECONDS have passed or it is
sent SIGTERM (then it unpublishes and leaves).
"""

from __future__ import annotations

import asyncio
import signal
import sys

from appliance.engine import Engine, EngineProfile, User
from appliance.media import EncoderSettings
from appliance.testing import TestPatternSource, ToneSource


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
    else:
        shape = [int(v) for v in sys.argv[5:8]]
        width, height, fps = shape + [1280, 720, 30][len(shape):]
        asyncio.run(publish(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), width, height, fps))
