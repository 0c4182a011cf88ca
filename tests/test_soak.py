"""Soak: the appliance in a call for minutes (``--soak-minutes``, 2 in CI; ``make
soak MINUTES=30``), with a remote coming and going: each cycle a remote in a
process of its own (as the world's are; its encoder's memory and threads are
not the appliance's) joins, publishes for 5 s and leaves. Resident memory
may grow by at most ``RSS_SLOPE_MB`` per stream cycle, a least-squares fit over
the second half of the cycles (at least ``MIN_CYCLES`` of them; the first ones
warm caches and allocator arenas up); open descriptors and threads stay flat."""

from __future__ import annotations

import asyncio
import gc
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter

from appliance.app.call import CallState
from appliance.app.config import load_config
from appliance.app.daemon import Daemon

from .daemonkit import until, write_config


def rss_mb() -> float:
    """Resident memory of the program's own mappings, in MB.

    The Rss of each mapping in ``/proc/self/smaps`` that lies within one that
    ``/proc/self/maps`` lists. Natively the two list the same mappings and
    this is VmRSS. Under qemu-user (``make test-arm64``) ``maps`` is emulated
    and lists only the emulated program's mappings, while ``smaps`` and VmRSS
    also count the emulator's own: its translation cache and heap, which grow
    with the code it translates and are no memory of ours.
    """
    own = []
    for line in open("/proc/self/maps"):
        low, high = line.split(None, 1)[0].split("-")
        own.append((int(low, 16), int(high, 16)))
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        first = line.split(None, 1)[0]
        if not first.endswith(":"):  # a mapping's first line: its address range
            start = int(first.split("-")[0], 16)
            inside = any(low <= start < high for low, high in own)
        elif first == "Rss:" and inside:
            total += int(line.split()[1])
    return total / 1024


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def live_objects() -> Counter[str]:
    """How many peer connections, receivers and decoders the collector still tracks."""
    kinds = ("RTCPeerConnection", "RTCRtpReceiver", "H264Decoder", "OpusDecoder")
    return Counter(type(o).__name__ for o in gc.get_objects() if type(o).__name__ in kinds)


def thread_names() -> Counter[str]:
    """The process's threads by name: Python's own name for a Python thread
    (without its number), the kernel's for the others (FFmpeg's, say)."""
    python = {t.native_id: re.sub(r"[-_]\d+", "", t.name) for t in threading.enumerate()}
    names: Counter[str] = Counter()
    for task in os.listdir("/proc/self/task"):
        try:
            names[python.get(int(task)) or open(f"/proc/self/task/{task}/comm").read().strip()] += 1
        except OSError:  # gone meanwhile
            pass
    return names


RSS_SLOPE_MB = 0.5
MIN_CYCLES = 10


def slope(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of ``points`` (y per x)."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


async def test_soak(janus, room_id, tmp_path, request, monkeypatch):
    minutes = request.config.getoption("--soak-minutes")
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    path = write_config(tmp_path, janus.url, room_id, auto_join=True)
    daemon = Daemon(load_config(path), path)
    task = asyncio.create_task(daemon.run())
    try:
        await until(lambda: hasattr(daemon, "call") and daemon.call.state is CallState.IN_CALL, "in call", timeout=60)
        samples = []
        names: list[Counter[str]] = []
        live: list[Counter[str]] = []
        started = time.monotonic()
        cycle = 0
        while time.monotonic() - started < minutes * 60 or cycle < MIN_CYCLES:
            # Players, tiles and buffers are made and freed.
            remote = subprocess.Popen([sys.executable, "-m", "appliance.testing.publishers", janus.url, room_id,
                                       "1", "5", "320", "180", "15"])
            try:
                await until(lambda: daemon.screen.picture_rect("remote-0-main") is not None, "remote on screen",
                            timeout=60)
                await until(lambda: remote.poll() is not None, "the remote gone", timeout=30)
                await until(lambda: daemon.screen.tile_rect("remote-0-main") is None, "tile gone")
            finally:
                remote.kill()
                remote.wait()
            await asyncio.sleep(1)  # the deferred collection of the closed links
            rss = rss_mb()  # first: the diagnostics below allocate
            names.append(thread_names())
            samples.append((rss, open_fds(), sum(names[-1].values())))
            live.append(live_objects())
            cycle += 1
        warm = samples[len(samples) // 2:]
        growth = slope([(n, rss) for n, (rss, _, _) in enumerate(warm)])
        first, last = warm[0], warm[-1]
        print(f"soak {minutes} min, {cycle} stream cycles: RSS {first[0]:.1f} -> {last[0]:.1f} MB, "
              f"slope {growth:+.2f} MB/cycle; open fds {first[1]} -> {last[1]}; threads {first[2]} -> {last[2]}")
        print("RSS by cycle (MB):", " ".join(f"{rss:.0f}" for rss, _, _ in samples))
        print("threads by cycle:", " ".join(str(n) for _, _, n in samples))
        print("live aiortc and codec objects by cycle:", " ".join(str(dict(c)) for c in live))
        half = len(samples) // 2
        print(f"threads at the end, against cycle {half}: +{dict(names[-1] - names[half])} -{dict(names[half] - names[-1])}")
        vm_rss = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:")) / 1024
        print(f"VmRSS at the end {vm_rss:.1f} MB (with an emulator's own memory, if any)")
        assert growth <= RSS_SLOPE_MB, f"memory grows by {growth:.2f} MB a cycle"
        assert max(fds for _, fds, _ in warm) - min(fds for _, fds, _ in warm) <= 4, "file descriptors leak"
        assert max(n for _, _, n in warm) - min(n for _, _, n in warm) <= 2, (
            f"threads leak: {dict(names[-1] - names[half])} more at the end than at cycle {half}")
        assert daemon.call.state is CallState.IN_CALL
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
