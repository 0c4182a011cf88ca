"""Fixtures: a real Janus in the private network namespace, engines, recorders.

The suite must run inside ``scripts/netns`` (``make test`` does that): only
``lo`` and the veth pair exist there, so no test packet can leave the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Self

import pytest
import websockets

from appliance.engine import Engine, EngineProfile
from appliance.engine.events import EVENTS
from appliance.media.processing import end_process, livekit_loaded
from appliance.testing import netns
from appliance.testing.janus_server import LocalJanus
from appliance.testing.pulse import PrivatePulse
from appliance.testing.webclient import CHROMIUM, CHROMIUM_FLAGS

from . import fakecamera  # noqa: F401  (stubs libcamera and kms++ before any test imports picamera2)

# The unit's tests boot a container that `make test-systemd` builds first.
collect_ignore = [] if os.environ.get("APPLIANCE_SYSTEMD_LOWER") else ["systemd"]

_EXIT_STATUS = pytest.StashKey[int]()  # the session's, for pytest_unconfigure


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--long", action="store_true", help="fault tests' long modes (10 restart cycles, ...)")
    parser.addoption("--soak-minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "2" if os.environ.get("CI") else "0.5")),
                     help="how long the soak test runs (default 2 in CI, 0.5 otherwise)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The soak runs for as long as asked, beyond the suite's per-test timeout.
    minutes = config.getoption("--soak-minutes")
    for item in items:
        if item.name == "test_soak":
            item.add_marker(pytest.mark.timeout(int(minutes * 60) + 180))
        # Tests that drive Chromium: `-m "not browser"` leaves them out (make test-arm64).
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # Tests ran livekit's audio processing in this process: it must end as the
    # daemon does (see end_process), or an exit that aborts fails a passed run.
    if livekit_loaded() and _EXIT_STATUS in config.stash:
        end_process(config.stash[_EXIT_STATUS])


@pytest.fixture
def long_mode(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--long"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian's Chromium (make test-arm64 leaves these out)")
    config.addinivalue_line("markers", "room: a simulated room in real time (make test-arm64 leaves it out: under "
                                       "emulation neither the room's process nor the appliance keeps real time)")
    logging.getLogger("aioice").setLevel(logging.WARNING)
    if not netns.inside():
        pytest.exit(
            "the tests must run in the private network namespace; "
            "use `make test` or `scripts/netns .venv/bin/python -m pytest`",
            returncode=4,
        )


@pytest.fixture(scope="session")
def janus() -> Iterator[LocalJanus]:
    """One Janus for the tests that do not stop it."""
    with LocalJanus() as server:
        yield server


@pytest.fixture
def own_janus() -> Iterator[LocalJanus]:
    """A Janus of the test's own, which it may stop and start."""
    with LocalJanus() as server:
        yield server


@contextlib.asynccontextmanager
async def chromium(flags: list[str]) -> AsyncIterator[Any]:
    """Debian's Chromium, headless, in the namespace, started with ``flags``."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
        yield launched
        await launched.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Chromium for the browser tests (the arm64 run has none)."""
    async with chromium(CHROMIUM_FLAGS) as launched:
        yield launched


@pytest.fixture
def pulse(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivatePulse]:
    """A private PulseAudio; ALSA devices ``mic`` and ``spk`` use it."""
    server = PrivatePulse()
    server.start()
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(server.asound_conf))
    yield server
    server.close()


@pytest.fixture
def room_id() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


def profile_for(server: LocalJanus | JanusSocket, **overrides: Any) -> EngineProfile:
    settings: dict[str, Any] = {"reconnect_max_delay": 1.0, "request_timeout": 5.0}
    settings.update(overrides)
    return EngineProfile(server=server.url, **settings)


class JanusSocket:
    """A WebSocket server on 127.0.0.1 speaking Janus's subprotocol, for
    tests that stand in for Janus or sit in front of it: subclasses implement
    :meth:`serve`; ``url`` is set once entered (``async with``)."""

    server: Any = None
    url = ""

    async def serve(self, ws: Any) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        self.server = await websockets.serve(self.serve, "127.0.0.1", 0, subprotocols=["janus-protocol"], max_size=None)
        self.url = f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


class Recorder:
    """Records every event of an engine and waits for conditions on them."""

    def __init__(self, engine: Engine) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self._changed = asyncio.Event()
        for name in EVENTS:
            engine.on(name, self._handler(name))

    def _handler(self, name: str) -> Callable[..., None]:
        def record(*args: Any) -> None:
            self.events.append((name, args))
            self._changed.set()

        return record

    def of(self, name: str) -> list[tuple[Any, ...]]:
        return [args for event, args in self.events if event == name]

    def states(self, name: str, key: str | None = None) -> list[Any]:
        """The states of ``publisher_state_update``/``player_state_update``
        (for one stream) or ``room_state_update``, in order."""
        return [args[1] for args in self.of(name) if key is None or args[0] == key]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
        async def watch() -> None:
            # Events wake it at once; sinks' frames are seen on the next poll.
            while not predicate():
                self._changed.clear()
                try:
                    await asyncio.wait_for(self._changed.wait(), 0.05)
                except asyncio.TimeoutError:
                    pass

        try:
            await asyncio.wait_for(watch(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"timed out waiting for {what or predicate}; events: {self.events}") from None


@pytest.fixture
async def engines() -> AsyncIterator[Callable[[EngineProfile], tuple[Engine, Recorder]]]:
    """Makes engines with recorders; destroys them after the test."""
    made: list[Engine] = []

    def make(profile: EngineProfile) -> tuple[Engine, Recorder]:
        engine = Engine.create(profile)
        made.append(engine)
        return engine, Recorder(engine)

    yield make
    for engine in made:
        task = asyncio.ensure_future(engine.destroy())
        await asyncio.wait([task], timeout=15)
        if not task.done():
            for other in asyncio.all_tasks():
                print("task", other.get_name(), "at:", " <- ".join(_await_chain(other)))
            task.cancel()
            raise AssertionError("Engine.destroy() did not finish")


def _await_chain(task: asyncio.Task[Any]) -> list[str]:
    """Where a suspended coroutine waits, outermost first (for stuck-task reports)."""
    chain, coro = [], task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            chain.append(f"{frame.f_code.co_filename.split('site-packages/')[-1]}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return chain
