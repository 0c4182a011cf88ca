"""CPU seconds per media second of publishing 720p30 video, in a process of its own.

    python -m bench.publish_cpu (encoded|raw) SERVER ROOM SECONDS

``encoded``: H.264 packets made beforehand are replayed, as a hardware encoder
hands them over: aiortc only packetizes. ``raw``: the same pictures as raw
frames, which aiortc encodes itself. The pictures are the test pattern with
sensor-like noise, so that they cost an encoder what a camera's do (flat
colour bars alone cost it almost nothing). Prints the figure as JSON.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys

import av
import numpy as np

from appliance.engine import Engine, EngineProfile, PublisherState, User
from appliance.media import EncoderSettings, H264Encoder
from appliance.media.encoder import VIDEO_TIME_BASE
from appliance.testing.pacing import Pacer
from appliance.testing.testpattern import Stamp, TestPattern

FPS = 30
FRAMES = 60  # two seconds of pictures, replayed in a loop


class Replay:
    """Replays prepared items (packets or frames) at 30 fps with fresh timestamps."""

    def __init__(self, items: list[av.Packet] | list[av.VideoFrame]) -> None:
        self.items = items
        self.count = 0
        self._pacer = Pacer(1 / FPS)

    async def recv(self) -> av.Packet | av.VideoFrame:
        await self._pacer.wait()
        item = self.items[self.count % len(self.items)]
        item.pts = self.count * VIDEO_TIME_BASE.denominator // FPS
        item.time_base = VIDEO_TIME_BASE
        self.count += 1
        return item

    def request_keyframe(self) -> None:
        pass  # the prepared stream has an IDR every two seconds

    def close(self) -> None:
        pass


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(mode: str, server: str, room: str, seconds: float) -> float:
    pattern = TestPattern(1280, 720)
    rng = np.random.default_rng(1)
    pictures = []
    for n in range(FRAMES):
        planes = pattern.render(Stamp(n, 0)).to_ndarray().astype(np.int16)
        planes += rng.integers(-12, 13, planes.shape, dtype=np.int16)  # sensor noise
        pictures.append(av.VideoFrame.from_ndarray(planes.clip(0, 255).astype(np.uint8), format="yuv420p"))
    if mode == "encoded":
        # As a camera's encoder would: 2 Mbit/s, an IDR every two seconds.
        encoder = H264Encoder(EncoderSettings(1280, 720, FPS, bitrate=2_000_000, gop=FRAMES))
        items: list = []
        for n, picture in enumerate(pictures):
            picture.pts = n * 3000
            items += encoder.encode(picture)
    else:
        items = pictures
    source = Replay(items)
    engine = Engine.create(EngineProfile(server=server))
    await engine.login_room(room, User(f"cpu-{mode}"))
    await engine.start_publishing_stream(f"cpu-{mode}", video=source)
    while engine.publisher_state(f"cpu-{mode}") is not PublisherState.PUBLISHING:
        await asyncio.sleep(0.05)
    await asyncio.sleep(2)
    cpu, frames = cpu_seconds(), source.count
    await asyncio.sleep(seconds)
    cpu, frames = cpu_seconds() - cpu, source.count - frames
    await engine.destroy()
    return cpu / (frames / FPS)


if __name__ == "__main__":
    print(json.dumps({"cpu_per_media_s": asyncio.run(measure(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))}))
