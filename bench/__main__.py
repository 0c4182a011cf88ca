"""``make bench``: measures the engine against a real local Janus.

Writes ``bench/results.json`` and prints a table. Figures so far:

- ``latency_decoded_ms_p50`` / ``_p99``: capture time stamped into the test
  pattern -> the decoded frame at the receiver (720p30, libx264 ultrafast).
- ``join_to_first_frame_ms_p50``: ``start_playing_stream`` -> first decoded
  frame, over joins at random points of a 2 s GOP.
- ``compose4_cpu_per_s``, ``compose4_dropped``, ``compose4_unshown``: four
  1280x720@30 remote streams (published by another process) decoded and
  composed to 1920x1080@30: CPU seconds of this process per second, display
  frames missed, remote frames replaced before they were shown.

See docs/performance.md.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import random
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path

import av

from appliance import EncoderSettings, Engine, EngineProfile, PlayerState, PublisherState, TestPatternSource, User
from appliance.compositor import Compositor, ScreenState
from appliance.display import HeadlessOutput
from appliance.janus_server import LocalJanus
from appliance.testpattern import read_stamp

RESULTS = Path(__file__).resolve().parent / "results.json"


async def wait_until(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        await asyncio.sleep(0.005)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def measure(janus: LocalJanus, joins: int, latency_seconds: float) -> dict[str, float]:
    room = f"bench-{uuid.uuid4().hex[:8]}"
    profile = EngineProfile(server=janus.url)
    publisher, viewer = Engine.create(profile), Engine.create(profile)
    source = TestPatternSource(EncoderSettings(gop=60))
    try:
        await publisher.login_room(room, User("pub"))
        await publisher.start_publishing_stream("cam", video=source)
        await wait_until(lambda: publisher.publisher_state("cam") is PublisherState.PUBLISHING)
        await viewer.login_room(room, User("viewer"))

        ages: list[float] = []

        def on_frame(frame: av.VideoFrame) -> None:
            stamp = read_stamp(frame)
            if stamp is not None:
                ages.append(stamp.age_ms())

        await viewer.start_playing_stream("cam", video_sink=on_frame)
        await wait_until(lambda: viewer.player_state("cam") is PlayerState.PLAYING)
        await asyncio.sleep(1.0)
        ages.clear()
        await asyncio.sleep(latency_seconds)
        latency = list(ages)
        await viewer.stop_playing_stream("cam")

        first_frames: list[float] = []
        for _ in range(joins):
            await asyncio.sleep(random.uniform(0.2, 2.0))  # a random point of the 2 s GOP
            arrived: list[float] = []
            started = time.monotonic()
            await viewer.start_playing_stream("cam", video_sink=lambda f: arrived.append(time.monotonic()) if not arrived else None)
            await wait_until(lambda: bool(arrived))
            first_frames.append((arrived[0] - started) * 1000)
            await viewer.stop_playing_stream("cam")
    finally:
        await viewer.destroy()
        await publisher.destroy()
    return {
        "latency_decoded_ms_p50": round(percentile(latency, 50), 1),
        "latency_decoded_ms_p99": round(percentile(latency, 99), 1),
        "latency_frames": len(latency),
        "join_to_first_frame_ms_p50": round(statistics.median(first_frames), 1),
        "join_to_first_frame_ms_max": round(max(first_frames), 1),
        "joins": joins,
    }


async def measure_compose(janus: LocalJanus, streams: int = 4, seconds: float = 10.0) -> dict[str, float]:
    room = f"bench-{uuid.uuid4().hex[:8]}"
    publishers = subprocess.Popen(
        [sys.executable, "-m", "bench.publishers", janus.url, room, str(streams), str(seconds + 8)],
        cwd=Path(__file__).resolve().parent.parent,
    )
    viewer = Engine.create(EngineProfile(server=janus.url))
    screen = Compositor(1920, 1080, "bgra", fps=30)
    output = HeadlessOutput(1920, 1080, "bgra")
    runner: asyncio.Task[None] | None = None
    try:
        await viewer.login_room(room, User("viewer"))
        await wait_until(lambda: len(viewer.streams) == streams)
        screen.set_status(ScreenState.IN_CALL, room=room, participants=streams + 1)
        for stream in viewer.streams:
            await viewer.start_playing_stream(stream.stream_id, video_sink=screen.show_stream(stream.stream_id, stream.stream_id))
        await wait_until(lambda: all(viewer.player_state(s.stream_id) is PlayerState.PLAYING for s in viewer.streams))
        runner = asyncio.create_task(screen.run(output))
        await asyncio.sleep(2.0)
        late, unshown, cpu, wall = screen.frames_late, screen.frames_unshown, time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        return {
            "compose4_cpu_per_s": round(cpu / wall, 3),
            "compose4_dropped": screen.frames_late - late,
            "compose4_unshown": screen.frames_unshown - unshown,
        }
    finally:
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        await viewer.destroy()
        publishers.wait(timeout=30)


def main() -> int:
    if {name for _, name in socket.if_nameindex()} != {"lo", "v0", "v1"}:
        print("bench: run it in the private network namespace: `make bench`", file=sys.stderr)
        return 69
    with LocalJanus(ice_interfaces=["v0"], debug_level=2) as janus:
        results = asyncio.run(measure(janus, joins=12, latency_seconds=10.0))
        results.update(asyncio.run(measure_compose(janus)))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
