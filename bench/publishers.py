"""Remote participants for the benchmarks, in a process of their own so that
the measuring process sees only its own work.

    python -m bench.publishers SERVER ROOM COUNT SECONDS [WIDTH HEIGHT]

Each of COUNT users publishes a stamped test pattern (30 fps, 2 s GOP) and a
tone, and plays nothing.
"""

from __future__ import annotations

import asyncio
import sys

from appliance.engine import Engine, EngineProfile, User
from appliance.media import EncoderSettings
from appliance.testing import TestPatternSource, ToneSource


async def publish(server: str, room: str, count: int, seconds: float, width: int, height: int) -> None:
    engines = []
    for n in range(count):
        engine = Engine.create(EngineProfile(server=server))
        await engine.login_room(room, User(f"remote-{n}", f"Remote {n}"))
        await engine.start_publishing_stream(
            f"remote-{n}-main", video=TestPatternSource(EncoderSettings(width, height, gop=60)), audio=ToneSource(660)
        )
        engines.append(engine)
    await asyncio.sleep(seconds)
    for engine in engines:
        await engine.destroy()


if __name__ == "__main__":
    size = [int(v) for v in sys.argv[5:7]] or [1280, 720]
    asyncio.run(publish(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), *size))
