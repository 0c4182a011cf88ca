"""Helpers for daemon tests: a config for a test appliance, the daemon running
in the test's loop, waiting on conditions, a NOTIFY_SOCKET, the loop's lag."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from appliance.app.config import load_config
from appliance.app.daemon import Daemon
from appliance.testing.demo import synthetic_config


def write_config(directory: Path, server_url: str, room_id: str, auto_join: bool = False,
                 screen: tuple[int, int, int] = (640, 360, 10)) -> Path:
    """A small, light appliance: 320x180@15 camera, 640x360@10 headless screen."""
    path = directory / "appliance.toml"
    path.write_text(synthetic_config(server_url, room_id, directory / "control.sock", auto_join=auto_join,
                                     screen=screen, camera=(320, 180, 15)))
    return path


@contextlib.asynccontextmanager
async def running_daemon(path: Path) -> AsyncIterator[Daemon]:
    """The daemon of the config at ``path``, running in this loop on gpiozero's
    mock pins until the block ends; then it must stop cleanly (exit 0)."""
    Device.pin_factory = MockFactory()
    daemon = Daemon(load_config(path), path)
    task = asyncio.create_task(daemon.run())
    try:
        while not hasattr(daemon, "control"):
            await asyncio.sleep(0.05)
        yield daemon
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 20) == 0
        Device.pin_factory.close()
        Device.pin_factory = None


async def until(predicate, what: str, timeout: float = 20) -> float:  # type: ignore[no-untyped-def]
    """Waits until ``predicate()`` (sync or async) holds; returns how long it took."""
    started = time.monotonic()
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.02)


def poll_until(predicate, timeout: float, what, interval: float = 0.05) -> None:  # type: ignore[no-untyped-def]
    """Polls ``predicate`` until it holds; after ``timeout`` fails saying ``what()``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; {what()}")
        time.sleep(interval)


class LoopLag:
    """The event loop's worst lag, seen by a task that asks to wake every ``period``.

    Use as ``async with LoopLag() as lag: ...``; ``lag.worst`` is in seconds.
    """

    def __init__(self, period: float = 0.01) -> None:
        self.period = period
        self.worst = 0.0
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.period)
            self.worst = max(self.worst, time.monotonic() - before - self.period)
            self.ticks += 1

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.create_task(self._tick(), name="loop-lag")
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class NotifySocket:
    """A NOTIFY_SOCKET of the test's own: records every datagram with its time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[tuple[float, str]] = []
        self.datagrams: list[str] = []  # each as it arrived, lines and all
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            self.datagrams.append(data.decode(errors="replace"))
            for line in data.decode(errors="replace").splitlines():
                self.messages.append((time.monotonic(), line))

    def lines(self, prefix: str) -> list[str]:
        return [line for _, line in self.messages if line.startswith(prefix)]

    def wait_for(self, predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        poll_until(predicate, timeout, lambda: f"notifications so far: {[m for _, m in self.messages][-20:]}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
        self._sock.close()
