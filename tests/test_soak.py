"""Soak: the appliance in a call for minutes (``--soak-minutes``, 2 in CI; ``make
soak MINUTES=30``), with the remote's stream coming and going; reports resident
memory and open file descriptors, which must not grow without bound."""

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
        while time.monotonic() - started < minutes * 60 or cycle < 2:
            # The remote's stream comes and goes: players, tiles and buffers are made and freed.
            await remote.start_publishing_stream("remote-main", video=TestPatternSource(EncoderSettings(320, 180, 15)),
                                                 audio=ToneSource(660))
            await rec.wait_for(lambda: daemon.screen.picture_rect("remote-main") is not None, what="remote on screen")
            await asyncio.sleep(5)
            await remote.stop_publishing_stream("remote-main")
            await rec.wait_for(lambda: daemon.screen.tile_rect("remote-main") is None, what="tile gone")
            samples.append((time.monotonic() - started, rss_mb(), open_fds()))
            cycle += 1
        first, last = samples[min(1, len(samples) - 1)], samples[-1]  # the first cycle warms caches up
        print(f"soak {minutes} min, {cycle} stream cycles: RSS {first[1]:.1f} -> {last[1]:.1f} MB "
              f"({last[1] - first[1]:+.1f}), open fds {first[2]} -> {last[2]} ({last[2] - first[2]:+d})")
        print("RSS by cycle (MB):", " ".join(f"{rss:.0f}" for _, rss, _ in samples))
        assert last[2] - first[2] <= 4, "file descriptors leak"
        assert last[1] - first[1] < 40, "memory grows"
        assert daemon.call.state is CallState.IN_CALL
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
