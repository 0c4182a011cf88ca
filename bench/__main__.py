"""``make bench``: the appliance measured against a real local Janus.

Runs inside the private network namespace, writes ``bench/results.json`` and
prints a table. Remote participants always run in processes of their own
(``appliance.testing.publishers``), so each figure is the measured side's alone.

- ``latency_ms_p50`` / ``_p99``: capture time stamped into the remote's 720p30
  picture -> the same picture read back from the composed screen output, at the
  moment the output shows it.
- ``join_to_first_frame_ms_p50`` (and ``_max``): what the join button does
  (``Call.join``) -> the first remote frame on the composed screen, over 12
  joins at random points of the remote's 2 s GOP.
- ``publish_cpu_ratio``: CPU seconds per media second publishing pre-encoded
  H.264 (what the hardware encoder gives), divided by the same when aiortc
  encodes the raw frames itself; both 720p30, measured in this run
  (``bench.publish_cpu``).
- ``compose4_cpu_per_s``, ``compose4_dropped`` (and ``compose4_unshown``): four
  1280x720@30 remotes decoded and composed to 1920x1080@30: CPU seconds of this
  process per second, display frames missed (and remote frames replaced before
  a screen showed them).
- ``rss_mb_4party``: resident memory of ``appliance run`` in a four-participant
  call (three remotes) after 60 s.
- ``start_to_ready_ms``: ``appliance run`` started -> ``READY=1`` (median of 3).

See docs/performance.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from appliance.app.call import Call, Media
from appliance.engine import Engine, EngineProfile, PlayerState, User
from appliance.screen.compositor import Compositor, ScreenState
from appliance.screen.display import HeadlessOutput
from appliance.screen.pixels import to_rgb
from appliance.testing import netns, read_stamp
from appliance.testing.demo import synthetic_config
from appliance.testing.janus_server import LocalJanus

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"


async def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        await asyncio.sleep(0.005)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def spawn(module: str, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE)


class WatchedOutput(HeadlessOutput):
    """A headless output that reads the remote's stamp from each shown screen."""

    def __init__(self, screen: Compositor, stream_id: str) -> None:
        super().__init__(screen.width, screen.height, screen.pixel_format)
        self.screen, self.stream_id = screen, stream_id
        self.shown: list[tuple[float, int, float]] = []  # (time shown, frame number, age ms)

    def show(self, image: np.ndarray) -> None:
        super().show(image)
        rect = self.screen.picture_rect(self.stream_id)
        if rect is None:
            return
        stamp = read_stamp(to_rgb(image[rect.slices], self.pixel_format))
        if stamp is not None and (not self.shown or self.shown[-1][1] != stamp.frame_number):
            self.shown.append((time.monotonic(), stamp.frame_number, stamp.age_ms()))


async def measure_screen(janus: LocalJanus) -> dict[str, float]:
    """Latency to the composed screen, and join -> first frame on it."""
    room = f"bench-{uuid.uuid4().hex[:8]}"
    publisher = spawn("appliance.testing.publishers", janus.url, room, 1, 90)
    engine = Engine.create(EngineProfile(server=janus.url))
    screen = Compositor(1280, 720, "bgra", fps=30)
    output = WatchedOutput(screen, "remote-0-main")
    call = Call(engine, room, User("viewer", "Viewer"), None, Media(None, None, screen, None))
    runner = asyncio.create_task(screen.run(output))
    try:
        call.join()
        await wait_until(lambda: len(output.shown) > 30, timeout=30)
        await asyncio.sleep(1)
        output.shown.clear()
        await asyncio.sleep(10)
        latency = [age for _, _, age in output.shown]
        await call.hangup()
        joins = []
        for _ in range(12):
            await asyncio.sleep(random.uniform(0.2, 2.0))  # a random point of the 2 s GOP
            output.shown.clear()
            started = time.monotonic()
            call.join()
            try:
                await wait_until(lambda: bool(output.shown))
            except TimeoutError:
                raise TimeoutError(f"no remote frame on the screen after joining: call {call.state.value} "
                                   f"({call.detail}), streams {[s.stream_id for s in engine.streams]}, "
                                   f"player {engine.player_state('remote-0-main').value}") from None
            joins.append((output.shown[0][0] - started) * 1000)
            await call.hangup()
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await engine.destroy()
        publisher.kill()
        publisher.wait()
    return {
        "latency_ms_p50": round(percentile(latency, 50), 1),
        "latency_ms_p99": round(percentile(latency, 99), 1),
        "join_to_first_frame_ms_p50": round(statistics.median(joins), 1),
        "join_to_first_frame_ms_max": round(max(joins), 1),
    }


def measure_publish_cpu(janus: LocalJanus) -> dict[str, float]:
    figures = {}
    for mode in ("encoded", "raw"):
        process = spawn("bench.publish_cpu", mode, janus.url, f"bench-{uuid.uuid4().hex[:8]}", 10)
        out, _ = process.communicate(timeout=120)
        figures[mode] = json.loads(out.strip().splitlines()[-1])["cpu_per_media_s"]
    return {
        "publish_cpu_ratio": round(figures["encoded"] / figures["raw"], 4),
        "publish_cpu_encoded_per_media_s": round(figures["encoded"], 4),
        "publish_cpu_raw_per_media_s": round(figures["raw"], 4),
    }


async def measure_compose(janus: LocalJanus, streams: int = 4, seconds: float = 10.0) -> dict[str, float]:
    room = f"bench-{uuid.uuid4().hex[:8]}"
    publishers = spawn("appliance.testing.publishers", janus.url, room, streams, seconds + 15)
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
        publishers.kill()
        publishers.wait()


def start_daemon(directory: Path, url: str, room: str, auto_join: bool) -> tuple[subprocess.Popen[Any], socket.socket]:
    config = directory / "appliance.toml"
    config.write_text(synthetic_config(url, room, directory / "control.sock", auto_join=auto_join))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(directory / "notify"))
    env = dict(os.environ, NOTIFY_SOCKET=str(directory / "notify"), GPIOZERO_PIN_FACTORY="mock",
               APPLIANCE_LOG_LEVEL="WARNING")
    process = subprocess.Popen([sys.executable, "-m", "appliance", "run", "--config", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, notify


def wait_ready(notify: socket.socket, timeout: float = 30) -> None:
    notify.settimeout(timeout)
    while b"READY=1" not in notify.recv(4096):
        pass


def measure_start_to_ready(janus: LocalJanus) -> dict[str, float]:
    times = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as directory:
            started = time.monotonic()
            process, notify = start_daemon(Path(directory), janus.url, "bench-ready", auto_join=False)
            wait_ready(notify)
            times.append((time.monotonic() - started) * 1000)
            process.terminate()
            process.wait(timeout=15)
            notify.close()
    return {"start_to_ready_ms": round(statistics.median(times), 1)}


def measure_rss(janus: LocalJanus, seconds: float = 60) -> dict[str, float]:
    room = f"bench-{uuid.uuid4().hex[:8]}"
    remotes = spawn("appliance.testing.publishers", janus.url, room, 3, seconds + 20)
    with tempfile.TemporaryDirectory() as directory:
        process, notify = start_daemon(Path(directory), janus.url, room, auto_join=True)
        try:
            wait_ready(notify)
            time.sleep(seconds)
            status = Path(f"/proc/{process.pid}/status").read_text()
            rss_kb = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])
        finally:
            process.terminate()
            process.wait(timeout=15)
            notify.close()
            remotes.kill()
            remotes.wait()
    return {"rss_mb_4party": round(rss_kb / 1024, 1)}


def main() -> int:
    if not netns.inside():
        print("bench: run it in the private network namespace: `make bench`", file=sys.stderr)
        return 69
    results: dict[str, float] = {}
    with LocalJanus(debug_level=2) as janus:
        results.update(asyncio.run(measure_screen(janus)))
        results.update(measure_publish_cpu(janus))
        results.update(asyncio.run(measure_compose(janus)))
        results.update(measure_rss(janus))
        results.update(measure_start_to_ready(janus))
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
