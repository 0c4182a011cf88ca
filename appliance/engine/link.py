"""What publishers and players share: one peer connection to Janus for one
stream, kept up by itself.

A link reports ``requesting`` until its media flows, then its active state;
every state event's ``extended_data["detail"]`` says why in one line.
When the media connection fails, Janus hangs up, or the room's connection is
lost, it tears down and starts again (after the room has reconnected, with
backoff for failures of its own), reporting each change. A fatal error (the
stream id is taken, the codec is refused) ends it in its idle state.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from collections.abc import Awaitable
from enum import Enum
from typing import Any

from aiortc import RTCPeerConnection

from .backoff import Backoff
from .errors import EngineError, ErrorCode, one_line
from .events import EventEmitter
from .ice import rtc_configuration
from .janus import VIDEOROOM, JanusConnection
from .quality import QualityMeter
from .room import Room

log = logging.getLogger(__name__)
LEAVE_TIMEOUT = 1.0  # seconds; the detach after it waits as long as any request


class FatalLinkError(EngineError):
    """A failure that trying again cannot mend."""


class Link:
    """Base of :class:`~appliance.engine.publisher.Publisher` and
    :class:`~appliance.engine.player.Player`; subclasses set the states and events and
    implement :meth:`_negotiate`."""

    IDLE: Enum
    REQUESTING: Enum
    ACTIVE: Enum
    STATE_EVENT: str
    QUALITY_EVENT: str

    def __init__(self, room: Room, emitter: EventEmitter, stream_id: str) -> None:
        self.stream_id = stream_id
        self.state = self.IDLE
        self._reported_code = ErrorCode.SUCCESS
        self.error = ErrorCode.SUCCESS
        self.detail = ""
        self._room = room
        self._emitter = emitter
        self._profile = room.profile
        self._task: asyncio.Task[None] | None = None
        self._pc: RTCPeerConnection | None = None
        self._connection: JanusConnection | None = None
        self._handle: int | None = None
        self._broken = asyncio.Event()
        self._janus_up = asyncio.Event()
        self._broken_code = ErrorCode.SUCCESS
        self._broken_why = ""
        self._side_tasks: list[asyncio.Task[Any]] = []
        # Peer connections still closing (see _teardown).
        self._closing: set[asyncio.Future[None]] = set()
        self._stopping = False
        # Structured fields for journald (JournalHandler sends record attributes).
        self._fields = {"ROOM": room.room_id, "STREAM": stream_id}

    @property
    def finished(self) -> bool:
        """True once the link has ended (stopped, or failed for good)."""
        return self._task is None or self._task.done()

    def start(self) -> None:
        self._set_state(self.REQUESTING, ErrorCode.SUCCESS, "starting")
        self._task = asyncio.create_task(self._run(), name=f"{type(self).__name__}-{self.stream_id}")

    async def stop(self, code: ErrorCode = ErrorCode.SUCCESS) -> None:
        """Tears the link down and reports the idle state."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._teardown()
        await asyncio.gather(*self._closing, return_exceptions=True)
        self._set_state(self.IDLE, code, "stopped" if code is ErrorCode.SUCCESS else f"stopped: {code.name}")

    # -- subclass hooks -------------------------------------------------------

    def _can_start(self) -> bool:
        return True

    def _waiting_for(self) -> str:
        """What a requesting link waits for, in one line."""
        return "connecting"

    def _watchers(self) -> list[Awaitable[Any]]:
        """Extra conditions that end an established link (see Player)."""
        return []

    async def _negotiate(self, connection: JanusConnection, handle: int, pc: RTCPeerConnection) -> None:
        raise NotImplementedError

    def _video_frames(self) -> int:
        return 0

    # -- the loop -------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(self._profile.reconnect_min_delay, self._profile.reconnect_max_delay)
        while not self._stopping:
            self._set_state(self.REQUESTING, self.error, self.detail or self._waiting_for())
            connection = await self._room.wait_ready(self._can_start)
            room_broken = self._room.broken
            try:
                await self._establish(connection)
            except FatalLinkError as exc:
                log.error("%s %r: %s", type(self).__name__.lower(), self.stream_id, exc.message, extra=self._fields)
                await self._teardown()
                self._set_state(self.IDLE, exc.code, exc.message)
                return
            except EngineError as exc:
                log.warning("%s %r: %s; retrying", type(self).__name__.lower(), self.stream_id, exc.message,
                            extra=self._fields)
                await self._teardown()
                self.error, self.detail = exc.code, f"{exc.message}; retrying"
                if not room_broken.is_set():
                    await asyncio.sleep(backoff.next_delay())
                continue
            backoff.reset()
            log.info("%s %r: %s", type(self).__name__.lower(), self.stream_id, self.ACTIVE.value, extra=self._fields)
            self._set_state(self.ACTIVE, ErrorCode.SUCCESS, "media flowing")
            self.error, self.detail = ErrorCode.SUCCESS, ""
            self._side_tasks.append(asyncio.create_task(self._report_quality()))
            await self._wait_broken(room_broken)
            await self._teardown()

    async def _establish(self, connection: JanusConnection) -> None:
        self._broken, self._broken_why = asyncio.Event(), ""
        self._janus_up = janus_up = asyncio.Event()
        self._connection = connection
        self._handle = await connection.attach(VIDEOROOM)
        self._room.listen(self._handle, self._on_janus_event)
        pc = self._pc = RTCPeerConnection(rtc_configuration(self._profile.ice_servers))
        connected = asyncio.Event()

        # Only the current connection may end the link: one torn down earlier
        # can still report its closing or its failed connecting task.
        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc is not self._pc:
                return
            if pc.connectionState == "connected":
                connected.set()
            elif pc.connectionState in ("failed", "closed"):
                self._break(ErrorCode.MEDIA_CONNECTION_FAILED, f"the media connection {pc.connectionState}")

        @pc.on("connectfailure")  # see aiortc_adapt: aiortc's connecting task failed
        def on_failure(why: str) -> None:
            if pc is self._pc:
                self._break(ErrorCode.MEDIA_CONNECTION_FAILED, why)

        # Up on both ends: Janus lists a feed to joiners, and forwards its
        # media, only from its webrtcup on (setup_media), which can come after
        # our side of the handshake is done.
        async def both_up() -> None:
            await connected.wait()
            await janus_up.wait()

        await self._negotiate(connection, self._handle, pc)
        await first_of(both_up(), self._broken.wait(), timeout=self._profile.request_timeout)
        if not (connected.is_set() and janus_up.is_set()):
            why = f": {self._broken_why}" if self._broken_why else ""
            if connected.is_set() and not why:
                why = ": janus did not report it up (webrtcup)"
            raise EngineError(ErrorCode.MEDIA_CONNECTION_FAILED, f"the media connection to janus did not come up{why}")

    async def _wait_broken(self, room_broken: asyncio.Event) -> None:
        await first_of(room_broken.wait(), self._broken.wait(), *self._watchers())
        if room_broken.is_set():
            self.error, self.detail = ErrorCode.NETWORK_INTERRUPTED, "the room's connection was lost; reconnecting"
        elif self._broken.is_set():
            self.error = self._broken_code
            self.detail = f"the media connection ended ({self._broken_why or self.error.name}); re-establishing"
            log.warning("%s %r: %s; re-establishing", type(self).__name__.lower(), self.stream_id, self.error.name,
                        extra=self._fields)

    def _break(self, code: ErrorCode, why: str) -> None:
        if not self._broken.is_set():
            self._broken_code, self._broken_why = code, one_line(why, 120)
            self._broken.set()

    def _on_janus_event(self, message: dict[str, Any]) -> None:
        if message.get("janus") == "webrtcup":
            self._janus_up.set()
        elif message.get("janus") in ("hangup", "detached"):
            self._break(ErrorCode.MEDIA_CONNECTION_FAILED, f"janus sent {message['janus']!r}")

    async def _report_quality(self) -> None:
        meter = QualityMeter()
        while self._pc is not None:
            await asyncio.sleep(self._profile.quality_interval)
            if self._pc is None:
                return
            try:
                report = await self._pc.getStats()
            except Exception as exc:  # a closing connection; the next sample will tell
                log.debug("stats of %r: %s", self.stream_id, exc)
                continue
            self._emitter.emit(self.QUALITY_EVENT, self.stream_id, meter.sample(report, self._video_frames()))

    async def _teardown(self) -> None:
        for task in self._side_tasks:
            task.cancel()
        await asyncio.gather(*self._side_tasks, return_exceptions=True)
        self._side_tasks.clear()
        pc, self._pc = self._pc, None
        if pc is not None:
            # Closing runs to its end even if the link is stopped meanwhile (stop
            # waits for it): cut short, the ICE transport, its sockets and
            # aiortc's tasks would stay open for good.
            closing = asyncio.ensure_future(pc.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            del pc
            await asyncio.shield(closing)
            collect_garbage_soon()
        handle, self._handle = self._handle, None
        if handle is not None and self._connection is not None:
            self._room.unlisten(handle)
            await self._leave(self._connection, handle)
            await self._connection.detach(handle)
        self._connection = None

    async def _leave(self, connection: JanusConnection, handle: int) -> None:
        """Leaves the room before the handle is detached. A detach alone
        arriving while Janus still sets up the handle's connection (a DTLS
        failure right after the answer) left the feed in the room for the
        session's life, and every later publish of the id was refused."""
        try:
            async with asyncio.timeout(LEAVE_TIMEOUT):
                await connection.message(handle, {"request": "leave"})
        except (EngineError, TimeoutError) as exc:  # not joined yet, or Janus gone: the detach follows anyway
            log.debug("leave on handle %s: %s", handle, exc)

    def _set_state(self, state: Enum, code: ErrorCode, detail: str) -> None:
        # Requesting again is news when the reason changed (a retry failing
        # for a new reason), not at every retry.
        if state is self.state and (state is not self.REQUESTING or code is self._reported_code):
            return
        self.state, self._reported_code = state, code
        self._emitter.emit(self.STATE_EVENT, self.stream_id, state, code, {"detail": detail})


# A closed peer connection is a web of reference cycles holding codec contexts
# and buffers (megabytes of C memory the garbage collector does not see); it is
# collected soon after it closes rather than whenever Python's allocation
# counters say so, or memory balloons as streams come and go. One collection
# serves every link closed in a burst (a hang-up closes them all at once): a
# full collection holds the event loop for tens of milliseconds.
COLLECT_DELAY = 0.5
_collections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.TimerHandle] = weakref.WeakKeyDictionary()


def collect_garbage_soon() -> None:
    """Schedules one full garbage collection ``COLLECT_DELAY`` from now, unless one is pending."""
    loop = asyncio.get_running_loop()
    if loop not in _collections:
        _collections[loop] = loop.call_later(COLLECT_DELAY, _collect, loop)


def _collect(loop: asyncio.AbstractEventLoop) -> None:
    _collections.pop(loop, None)
    gc.collect()


async def first_of(*awaitables: Awaitable[Any], timeout: float | None = None) -> None:
    """Waits until one of ``awaitables`` is done (or ``timeout``), then cancels the rest."""
    waiters = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
