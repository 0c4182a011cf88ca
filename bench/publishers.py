"""Publishes N synthetic 720p30 streams from a process of its own, so that the
benchmark's own process measures only the receiving side.

    python -m bench.publishers SERVER ROOM COUNT SECONDS
"""

from __future__ import annotations

import asyncio
import sys

from appliance import EncoderSettings, Engine, EngineProfile, TestPatternSource, User


async def publish(server: str, room: str, count: int, seconds: float) -> None:
    engine = Engine.create(EngineProfile(server=server))
    await engine.login_room(room, User("bench-publisher"))
    for n in range(count):
        await engine.start_publishing_stream(f"bench-{n}", video=TestPatternSource(EncoderSettings(gop=60)))
    await asyncio.sleep(seconds)
    await engine.destroy()


if __name__ == "__main__":
    asyncio.run(publish(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
