"""Soak: the appliance in a call for minutes (``--soak-minutes``, 2 in CI; ``make
soak MINUTES=30``), with the remote's stream coming and going. Resident memory
may grow by at most ``RSS_SLOPE_MB`` per stream cycle, a least-squares fit over
the second half of the cycles (at least ``MIN_CYCLES`` of them; the first ones
warm caches and allocator arenas up); open descriptors and threads stay flat."""

from __future__ import annotations

import asyncio
import os
import time

from appliance.app.call import CallState
from appliance.app.config import load_config
from appliance.app.daemon import Daemon
from appliance.engine import User
from appliance.media import EncoderSettings
from appliance.testing import TestPatternSource, ToneSource

from .conftest import profile_for
from .daemonkit import write_config


def rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


RSS_SLOPE_MB = 0.5
MIN_CYCLES = 10


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of ``points`` (y per x)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


async def test_soak(janus, room_id, tmp_path, engines, request, monkeypatch):
    minutes = request.config.getoption("--soak-minutes")
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    path = write_config(tmp_path, janus.url, room_id, auto_join=True)
    daemon = Daemon(load_config(path), path)
    task = asyncio.create_task(daemon.run())
    remote, rec = engines(profile_for(janus))
    await remote.login_room(room_id, User("remote"))
    try:
        await rec.wait_for(lambda: daemon.call.state is CallState.IN_CALL, what="in call")
        samples = []
        started = time.monotonic()
        cycle = 0
        while time.monotonic() - started < minutes * 60 or cycle < MIN_CYCLES:
            # The remote's stream comes and goes: players, tiles and buffers are made and freed.
            video, audio = TestPatternSource(EncoderSettings(320, 180, 15)), ToneSource(660)
            await remote.start_publishing_stream("remote-main", video=video, audio=audio)
            await rec.wait_for(lambda: daemon.screen.picture_rect("remote-main") is not None, what="remote on screen")
            await asyncio.sleep(5)
            await remote.stop_publishing_stream("remote-main")
            video.close()  # the test opened them
            audio.close()
            await rec.wait_for(lambda: daemon.screen.tile_rect("remote-main") is None, what="tile gone")
            await asyncio.sleep(1)  # the deferred collection of the closed links
            samples.append((rss_mb(), open_fds(), threads()))
            cycle += 1
        warm = samples[len(samples) // 2:]
        growth = slope([(n, rss) for n, (rss, _, _) in enumerate(warm)])
        first, last = warm[0], warm[-1]
        print(f"soak {minutes} min, {cycle} stream cycles: RSS {first[0]:.1f} -> {last[0]:.1f} MB, "
              f"slope {growth:+.2f} MB/cycle; open fds {first[1]} -> {last[1]}; threads {first[2]} -> {last[2]}")
        print("RSS by cycle (MB):", " ".join(f"{rss:.0f}" for rss, _, _ in samples))
        assert growth <= RSS_SLOPE_MB, f"memory grows by {growth:.2f} MB a cycle"
        assert max(fds for _, fds, _ in warm) - min(fds for _, fds, _ in warm) <= 4, "file descriptors leak"
        assert max(n for _, _, n in warm) - min(n for _, _, n in warm) <= 2, "threads leak"
        assert daemon.call.state is CallState.IN_CALL
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
