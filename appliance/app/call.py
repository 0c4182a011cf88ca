"""The call: what the buttons, auto-join and the admin socket drive.

States: idle -> joining -> in call -> leaving -> idle, and reconnecting while
the engine recovers by itself. Joining retries with capped exponential
backoff and jitter (1 s to 30 s) until it gets in or hang-up is pressed; the
screen and ``STATUS=`` say whether the server could not be reached or answered
with a refusal, and then what it said (a full room, a wrong room id type, a
refused PIN). A refused token or PIN, or ids the server refuses, stop it
with an error screen instead. In a call it
publishes the camera and microphone as ``<user_id>-main``, plays every stream
as it is added (picture to the screen, sound to the speaker) and stops each as
it is deleted. Every action is idempotent: join while joining or in a call,
hang-up while idle, do nothing.

Example, with a Janus at ``janus_url``:

>>> import asyncio
>>> from appliance.engine import Engine, EngineProfile, User
>>> from appliance.screen import Compositor
>>> async def one_call(url):
...     engine = Engine.create(EngineProfile(server=url))
...     media = Media(camera=None, microphone=None, screen=Compositor(640, 360, "bgra"), speaker=None)
...     call = Call(engine, "doc-call", User("room-42", "Room 42"), None, media)
...     call.join()
...     while call.state is not CallState.IN_CALL:
...         await asyncio.sleep(0.05)
...     muted = call.toggle_mute()
...     await call.hangup()
...     await engine.destroy()
...     return muted, call.state
>>> asyncio.run(asyncio.wait_for(one_call(janus_url), 20))
(True, <CallState.IDLE: 'idle'>)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..engine.backoff import Backoff
from ..engine.engine import Engine
from ..engine.errors import UNREACHABLE, ErrorCode, one_line
from ..engine.profile import RoomConfig, Stream, User
from ..engine.states import PublisherState, RoomState, RoomStateReason, UpdateType
from ..engine.tracks import AudioSource, EncodedVideoSource
from ..media.speaker import Speaker
from ..screen.compositor import Compositor, ScreenState

log = logging.getLogger(__name__)


class CallState(Enum):
    IDLE = "idle"
    JOINING = "joining"
    IN_CALL = "in call"
    RECONNECTING = "reconnecting"
    LEAVING = "leaving"


@dataclass
class Media:
    """The appliance's devices; any may be missing."""

    camera: EncodedVideoSource | None
    microphone: AudioSource | None
    screen: Compositor
    speaker: Speaker | None


class Call:
    def __init__(
        self,
        engine: Engine,
        room_id: str,
        user: User,
        token: str | None,
        media: Media,
        on_change: Callable[[Call], None] = lambda call: None,
        retry_min: float = 1.0,
        retry_max: float = 30.0,
        pin: str | None = None,
    ) -> None:
        self.engine, self.room_id, self.user, self.token, self.media = engine, room_id, user, token, media
        self.pin = pin
        self.state = CallState.IDLE
        self.muted = False
        self.detail = ""
        self._on_change = on_change
        self._retry = (retry_min, retry_max)
        self._join_task: asyncio.Task[None] | None = None
        self._hangup_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._shown: set[str] = set()  # streams given to the screen and speaker
        self._login_failure = ""
        # Why the call's own stream is not flowing ("" while it publishes).
        self.media_problem = ""
        engine.on("room_state_update", self._on_room_state)
        engine.on("room_stream_update", self._on_streams)
        engine.on("room_user_update", self._on_users)
        engine.on("publisher_state_update", self._on_publisher)

    @property
    def stream_id(self) -> str:
        return f"{self.user.user_id}-main"

    @property
    def participants(self) -> int:
        return len(self.engine.users) + 1 if self.state is CallState.IN_CALL else 0

    # -- actions ------------------------------------------------------------

    def join(self) -> None:
        """Starts joining unless already joining or in a call."""
        if self.state is CallState.IDLE and self._join_task is None:
            self._set(CallState.JOINING, "connecting")
            self._join_task = asyncio.create_task(self._join(), name="call-join")

    async def hangup(self) -> None:
        """Leaves the call (or stops trying to join); idle afterwards."""
        async with self._lock:
            task, self._join_task = self._join_task, None
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            if self.state is CallState.IDLE and self.engine.room_state is RoomState.DISCONNECTED:
                return
            self._set(CallState.LEAVING)
            await self.engine.logout_room()
            self._clear_streams()
            self._set(CallState.IDLE, "")

    def press_hangup(self) -> None:
        """Hang-up from a button: starts leaving (owned by the call), returns at once."""
        if self._hangup_task is None or self._hangup_task.done():
            self._hangup_task = asyncio.create_task(self.hangup(), name="call-hangup")

    def toggle_mute(self) -> bool:
        """Privacy mute of the microphone: the others hear silence."""
        self.set_muted(not self.muted)
        return self.muted

    def set_muted(self, muted: bool) -> None:
        self.muted = muted
        if self.media.microphone is not None:
            self.media.microphone.muted = muted  # type: ignore[union-attr]
        self._set(self.state)

    async def close(self) -> None:
        if self._hangup_task is not None:
            await asyncio.gather(self._hangup_task, return_exceptions=True)
        await self.hangup()

    # -- joining ------------------------------------------------------------

    async def _join(self) -> None:
        backoff = Backoff(*self._retry)
        try:
            while True:
                code = await self.engine.login_room(
                    self.room_id, self.user, RoomConfig(is_user_status_notify=True, token=self.token, pin=self.pin)
                )
                if code is ErrorCode.SUCCESS:
                    break
                if code in (ErrorCode.AUTH_FAILED, ErrorCode.INVALID_ROOM_ID, ErrorCode.INVALID_USER_ID):
                    # The room's PIN is refused with the same code as a token.
                    token = code is ErrorCode.AUTH_FAILED and "has a PIN" not in self._login_failure
                    self._set(CallState.IDLE, "the server refused the token" if token
                              else f"refused: {self._login_failure}")
                    return
                delay = backoff.next_delay()
                if code in UNREACHABLE:
                    self._set(CallState.JOINING, f"cannot reach the server, retrying in {delay:.0f} s")
                else:  # the server answered, and said no: say what it said
                    self._set(CallState.JOINING, f"the server refused: {self._login_failure}; retrying in {delay:.0f} s")
                await asyncio.sleep(delay)
            camera, microphone = self.media.camera, self.media.microphone
            if camera is not None or microphone is not None:
                await self.engine.start_publishing_stream(self.stream_id, video=camera, audio=microphone)
            self._set(CallState.IN_CALL, "")
        finally:
            if self._join_task is asyncio.current_task():
                self._join_task = None

    # -- engine events --------------------------------------------------------

    async def _on_streams(self, room_id: str, update: UpdateType, streams: list[Stream]) -> None:
        for stream in streams:
            if update is UpdateType.ADD:
                name = stream.user.user_name or stream.user.user_id
                speaker = self.media.speaker
                self._shown.add(stream.stream_id)
                await self.engine.start_playing_stream(
                    stream.stream_id,
                    video_sink=self.media.screen.show_stream(stream.stream_id, name, share=stream.is_share),
                    audio_sink=speaker.audio_sink(stream.stream_id) if speaker else None,
                )
            else:
                # Off the screen and out of the speaker first: stopping the player
                # (closing its connection) may take a while, its tile must not.
                self._drop_stream(stream.stream_id)
                await self.engine.stop_playing_stream(stream.stream_id)

    def _on_publisher(self, stream_id: str, state: PublisherState, code: ErrorCode, extended: dict[str, Any]) -> None:
        if stream_id == self.stream_id:
            problem = "" if state is PublisherState.PUBLISHING else extended.get("detail") or state.value
            if problem != self.media_problem:
                self.media_problem = problem
                self._set(self.state)

    def _on_users(self, room_id: str, update: UpdateType, users: list[User]) -> None:
        self._set(self.state)  # the participant count changed

    def _on_room_state(self, room_id: str, state: RoomState, code: ErrorCode, extended: dict[str, Any]) -> None:
        reason = extended.get("reason")
        if reason is RoomStateReason.LOGIN_FAILED:
            # One line already (the engine's rule); shortened so STATUS= keeps the rest.
            self._login_failure = one_line(extended.get("detail") or code.name, 120)
        if reason is RoomStateReason.RECONNECTING and self.state is CallState.IN_CALL:
            self._set(CallState.RECONNECTING, "reconnecting")
        elif reason is RoomStateReason.RECONNECTED and self.state is CallState.RECONNECTING:
            self._set(CallState.IN_CALL, "")
        elif reason in (RoomStateReason.KICKED_OUT, RoomStateReason.RECONNECT_FAILED):
            self._clear_streams()
            self._set(CallState.IDLE, str(extended.get("detail") or reason.value))

    def _drop_stream(self, stream_id: str) -> None:
        self._shown.discard(stream_id)
        self.media.screen.remove_stream(stream_id)
        if self.media.speaker is not None:
            self.media.speaker.remove_stream(stream_id)

    def _clear_streams(self) -> None:
        # Every stream shown, not only the nine on screen.
        for stream_id in list(self._shown):
            self._drop_stream(stream_id)

    def _set(self, state: CallState, detail: str | None = None) -> None:
        changed = state is not self.state or (detail is not None and detail != self.detail)
        self.state = state
        if detail is not None:
            self.detail = detail
        screen_state = {
            CallState.IDLE: ScreenState.ERROR if self.detail else ScreenState.IDLE,
            CallState.JOINING: ScreenState.CONNECTING,
            CallState.IN_CALL: ScreenState.IN_CALL,
            CallState.RECONNECTING: ScreenState.RECONNECTING,
            CallState.LEAVING: ScreenState.CONNECTING,
        }[state]
        # In a call, the screen says why our own stream does not flow, as STATUS= does.
        shown = f"no media: {self.media_problem}" if state is CallState.IN_CALL and self.media_problem else self.detail
        self.media.screen.set_status(screen_state, self.room_id, shown, self.muted, self.participants)
        if changed:
            log.info("call: %s%s", state.value, f" ({self.detail})" if self.detail else "")
        self._on_change(self)
