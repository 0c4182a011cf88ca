"""``make bench``: the appliance measured against a real local Janus.

Runs inside the private network namespace, writes ``bench/results.json`` and
prints a table. Remote participants always run in processes of their own
(``appliance.testing.publishers``), so each figure is the measured side's alone.

- ``latency_ms_p50`` / ``_p99``: capture time stamped into the remote's 720p30
  picture -> the same picture read back from the composed screen output, at the
  moment the output is shown it; ``stage_<from>_<to>_ms_p50``/``_p99`` split it
  (capture, complete, decoded, delivered, composed, shown).
- ``chromium_latency_ms_p50`` / ``_p99``: the same stream in Debian's Chromium
  through janus.js (``bench/peer``), at ``requestVideoFrameCallback``'s
  expected display time, pooled over four page loads;
  ``latency_vs_chromium_p50`` and ``latency_p99_vs_chromium_p99`` are ours over
  its.
- ``join_to_first_frame_ms_p50`` (and ``_max``): what the join button does
  (``Call.join``) -> the first remote frame on the composed screen, over 12
  joins at random points of the remote's 2 s GOP.
- ``publish_cpu_ratio``: CPU seconds per media second publishing pre-encoded
  H.264 (what the hardware encoder gives), divided by the same when aiortc
  encodes the raw frames itself; both 720p30, measured in this run
  (``bench.publish_cpu``).
- ``compose4_cpu_per_s``, ``compose4_dropped`` (and ``compose4_unshown``): four
  1280x720@30 remotes decoded and composed to 1920x1080 at up to 60 fps: CPU
  seconds of this process per second, display deadlines missed while a remote
  frame waited (and remote frames replaced before a screen showed them).
- ``receive3_cpu_per_s``, ``chromium_receive3_cpu_per_s``,
  ``receive3_cpu_vs_chromium``: three 720p30 remotes on the screen of
  ``appliance run`` (camera and microphone off), then in Chromium: CPU seconds
  per second of each whole process tree.
- ``rss_mb_4party`` (and ``pss_mb_4party``, ``anon_mb_4party``): resident
  (proportional, anonymous) memory of ``appliance run`` in a four-participant
  call (three remotes) after 60 s. Only the anonymous part is independent of
  what the page cache holds of the libraries (docs/performance.md).
- ``start_to_ready_ms``: ``appliance run`` started -> ``READY=1`` (median of 3).
- ``audio_latency_ms_p50`` / ``_p99``, ``audio_reverse_latency_ms_p50`` /
  ``_p99``, ``aec_erle_db``, ``aec_cpu_per_s``: see ``bench.audio``.

``appliance run`` starts from the package byte-compiled first, as
``scripts/install-pi`` leaves it on the board. See docs/performance.md.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np

import appliance
from appliance.app.call import Call, Media
from appliance.engine import Engine, EngineProfile, PlayerState, User
from appliance.engine.aiortc_adapt import time_video_frames
from appliance.media.processing import end_process
from appliance.screen.compositor import Compositor, ScreenState
from appliance.screen.display import HeadlessOutput
from appliance.testing import netns, read_stamp
from appliance.testing.demo import synthetic_config
from appliance.testing.janus_server import LocalJanus
from appliance.testing.webclient import CHROMIUM, CHROMIUM_FLAGS, WebClientServer

from .audio import measure_audio_latency, measure_echo_cancellation, measure_reverse_latency

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.json"
PEER_PAGE = Path(__file__).resolve().parent / "peer"
CHROMIUM_PROGRAMS = "/usr/lib/chromium/"  # what Debian's /usr/bin/chromium (a script) runs


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


STAGES = ("complete", "decoded", "delivered", "composed")


class StageClock:
    """Times each frame of the measured stream at every stage (see ``time_video_frames``
    and ``Compositor.frame_clock``), keyed by its RTP timestamp."""

    def __init__(self) -> None:
        self.times: dict[int, dict[str, float]] = {}
        self.last_composed: int | None = None

    def __call__(self, stage: str, pts: int, now: float) -> None:
        self.times.setdefault(pts, {}).setdefault(stage, now)
        if stage == "composed":
            self.last_composed = pts


class WatchedOutput(HeadlessOutput):
    """A headless output that reads the remote's stamp from each shown screen."""

    def __init__(self, screen: Compositor, stream_id: str, clock: StageClock) -> None:
        super().__init__(screen.width, screen.height, screen.pixel_format)
        self.screen, self.stream_id, self.clock = screen, stream_id, clock
        # (time shown, frame number, age ms, capture time on the monotonic clock, RTP timestamp)
        self.shown: list[tuple[float, int, float, float, int | None]] = []

    def show(self, image: np.ndarray) -> None:
        now, wall = time.monotonic(), time.time()  # shown now: reading the stamp is the benchmark's own cost
        super().show(image)
        rect = self.screen.picture_rect(self.stream_id)
        if rect is None:
            return
        stamp = read_stamp(image[rect.slices])  # bgra: read_stamp reads green, the stamp is black and white
        if stamp is not None and (not self.shown or self.shown[-1][1] != stamp.frame_number):
            captured = now - (wall - stamp.capture_ms / 1000)
            self.shown.append((now, stamp.frame_number, stamp.age_ms(wall), captured, self.clock.last_composed))


def stage_figures(output: WatchedOutput) -> dict[str, float]:
    """p50/p99 of each stage of the way to the screen, for the frames shown."""
    ends = ("capture",) + STAGES + ("shown",)
    spans: dict[str, list[float]] = {f"{a}_{b}": [] for a, b in zip(ends, ends[1:])}
    for shown, _, _, captured, pts in output.shown:
        times = output.clock.times.get(pts) if pts is not None else None
        if times is None or any(stage not in times for stage in STAGES):
            continue
        points = [captured] + [times[stage] for stage in STAGES] + [shown]
        for name, start, end in zip(spans, points, points[1:]):
            spans[name].append((end - start) * 1000)
    figures = {}
    for name, values in spans.items():
        if values:
            figures[f"stage_{name}_ms_p50"] = round(percentile(values, 50), 2)
            figures[f"stage_{name}_ms_p99"] = round(percentile(values, 99), 2)
    return figures


async def measure_screen(janus: LocalJanus) -> dict[str, float]:
    """Latency to the composed screen stage by stage, Chromium's beside it, and
    join -> first frame on the screen."""
    room = f"bench-{uuid.uuid4().hex[:8]}"
    publisher = spawn("appliance.testing.publishers", janus.url, room, 1, 120)
    engine = Engine.create(EngineProfile(server=janus.url))
    screen = Compositor(1280, 720, "bgra")  # at 60 fps, the HDMI rate (Chromium's frame clock too)
    clock = StageClock()
    output = WatchedOutput(screen, "remote-0-main", clock)
    call = Call(engine, room, User("viewer", "Viewer"), None, Media(None, None, screen, None))
    runner = asyncio.create_task(screen.run(output))
    try:
        call.join()
        await wait_until(lambda: len(output.shown) > 30, timeout=30)
        await asyncio.sleep(1)
        output.shown.clear()
        time_video_frames(clock)  # for the decoders made from here: rejoin
        await call.hangup()
        call.join()
        await wait_until(lambda: len(output.shown) > 30, timeout=30)
        screen.frame_clock = clock
        output.shown.clear()
        await asyncio.sleep(10)
        screen.frame_clock = None
        time_video_frames(None)
        latency = [age for _, _, age, _, _ in output.shown]
        figures = stage_figures(output)
        await call.hangup()
        chromium = await chromium_latency(janus, room)
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
        time_video_frames(None)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await engine.destroy()
        publisher.kill()
        publisher.wait()
    ours = {"latency_ms_p50": round(percentile(latency, 50), 1), "latency_ms_p99": round(percentile(latency, 99), 1)}
    return {
        **ours, **chromium,
        "latency_vs_chromium_p50": round(ours["latency_ms_p50"] / chromium["chromium_latency_ms_p50"], 3),
        "latency_p99_vs_chromium_p99": round(ours["latency_ms_p99"] / chromium["chromium_latency_ms_p99"], 3),
        **figures,
        "join_to_first_frame_ms_p50": round(statistics.median(joins), 1),
        "join_to_first_frame_ms_max": round(max(joins), 1),
    }


@contextlib.asynccontextmanager
async def chromium_peer(janus: LocalJanus, room: str, stamp: bool) -> AsyncIterator[Any]:
    """Debian's Chromium (headless, in the namespace) with the peer page
    (``bench/peer``) subscribed through janus.js to every stream of ``room``."""
    from playwright.async_api import async_playwright

    with WebClientServer(directory=PEER_PAGE) as web:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            try:
                page = await browser.new_page()
                query = urllib.parse.urlencode({"server": janus.url, "room": room, "stamp": int(stamp)})
                await page.goto(f"{web.url}?{query}")
                yield page
            finally:
                await browser.close()


async def peer_state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate("peerState()")
    if state["error"]:
        raise RuntimeError(f"the Chromium peer failed: {state['error']}")
    return state


async def chromium_latency(janus: LocalJanus, room: str, runs: int = 4, seconds: float = 5.0) -> dict[str, float]:
    """The same stream's age at Chromium's expected display time, pooled over
    ``runs`` page loads: each lands at its own phase of the 60 Hz frame clock."""
    ages: list[float] = []
    for _ in range(runs):
        async with chromium_peer(janus, room, stamp=True) as page:
            deadline = time.monotonic() + 20
            while len((await peer_state(page))["ages"]) < 30:
                if time.monotonic() > deadline:
                    raise TimeoutError("the Chromium peer read no stamps")
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            skip = len((await peer_state(page))["ages"])
            await asyncio.sleep(seconds)
            ages += (await peer_state(page))["ages"][skip:]
    return {"chromium_latency_ms_p50": round(percentile(ages, 50), 1),
            "chromium_latency_ms_p99": round(percentile(ages, 99), 1)}


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
    screen = Compositor(1920, 1080, "bgra")
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


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds ``pid`` has used so far (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def chromium_pids() -> list[int]:
    """Every Chromium process: the browser, its renderers, GPU, network and
    crash handlers (the benchmark's is the only Chromium running)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.readlink(entry / "exe").startswith(CHROMIUM_PROGRAMS):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def tree_cpu_per_s(pids: list[int], seconds: float) -> float:
    """CPU seconds per second used by the processes ``pids`` over ``seconds``."""
    started = time.monotonic()
    before = {pid: cpu_seconds(pid) for pid in pids}
    time.sleep(seconds)
    used = sum(after - first for pid, first in before.items()
               if first is not None and (after := cpu_seconds(pid)) is not None)
    return used / (time.monotonic() - started)


async def measure_receive3(janus: LocalJanus, seconds: float = 10.0) -> dict[str, float]:
    """Three 720p30 remotes shown by the appliance (camera and microphone off)
    and then by Chromium: CPU of each whole process tree."""
    room = f"bench-{uuid.uuid4().hex[:8]}"
    remotes = spawn("appliance.testing.publishers", janus.url, room, 3, 4 * seconds + 60)
    try:
        with tempfile.TemporaryDirectory() as directory:
            process, notify = start_daemon(Path(directory), janus.url, room, auto_join=True, sources=("none", "none"))
            try:
                wait_ready(notify)
                await asyncio.sleep(5)  # in the call, all three playing
                ours = await asyncio.to_thread(tree_cpu_per_s, [process.pid], seconds)
            finally:
                process.terminate()
                process.wait(timeout=15)
                notify.close()
        async with chromium_peer(janus, room, stamp=False) as page:
            deadline = time.monotonic() + 20
            while (state := await peer_state(page))["videos"] < 3 or state["frames"] < 90:
                if time.monotonic() > deadline:
                    raise TimeoutError("the Chromium peer shows fewer than three streams")
                await asyncio.sleep(0.2)
            await asyncio.sleep(3)
            theirs = await asyncio.to_thread(tree_cpu_per_s, chromium_pids(), seconds)
    finally:
        remotes.kill()
        remotes.wait()
    return {"receive3_cpu_per_s": round(ours, 3), "chromium_receive3_cpu_per_s": round(theirs, 3),
            "receive3_cpu_vs_chromium": round(ours / theirs, 3)}


def start_daemon(directory: Path, url: str, room: str, auto_join: bool,
                 sources: tuple[str, str] = ("test", "tone")) -> tuple[subprocess.Popen[Any], socket.socket]:
    config = directory / "appliance.toml"
    config.write_text(synthetic_config(url, room, directory / "control.sock", auto_join=auto_join, sources=sources))
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
            rollup = dict(line.split(":", 1) for line in Path(f"/proc/{process.pid}/smaps_rollup").read_text()
                          .splitlines()[1:])
            rss_kb, pss_kb, anon_kb = (int(rollup[key].split()[0]) for key in ("Rss", "Pss", "Anonymous"))
        finally:
            process.terminate()
            process.wait(timeout=15)
            notify.close()
            remotes.kill()
            remotes.wait()
    return {"rss_mb_4party": round(rss_kb / 1024, 1), "pss_mb_4party": round(pss_kb / 1024, 1),
            "anon_mb_4party": round(anon_kb / 1024, 1)}


def main() -> int:
    if not netns.inside():
        print("bench: run it in the private network namespace: `make bench`", file=sys.stderr)
        return 69
    results: dict[str, float] = {}
    # As install-pi does: the daemons measured here read bytecode, not source.
    compileall.compile_dir(Path(appliance.__file__).parent, quiet=1)
    with LocalJanus(debug_level=2) as janus:
        results.update(asyncio.run(measure_screen(janus)))
        results.update(measure_publish_cpu(janus))
        results.update(asyncio.run(measure_compose(janus)))
        results.update(asyncio.run(measure_receive3(janus)))
        results.update(measure_rss(janus))
        results.update(measure_start_to_ready(janus))
        results.update(asyncio.run(measure_audio_latency(janus)))
        results.update(measure_reverse_latency(janus))
    results.update(measure_echo_cancellation())
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    width = max(map(len, results))
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    end_process(main())  # it ran the audio processing (livekit) in this process
