"""The engine: the room model on a Janus VideoRoom.

Create it with a profile, register handlers at once so no event is missed, log
in to a room, publish local sources and play remote streams. Every outcome is
reported through events; the calls return an :class:`ErrorCode` and never
raise for bad input or an unreachable server.

Example, with a Janus at ``janus_url``:

>>> import asyncio
>>> from appliance.engine import Engine, EngineProfile, RoomConfig, User
>>> async def visit(url):
...     engine = Engine.create(EngineProfile(server=url))
...     states = []
...     engine.on("room_state_update", lambda room, state, code, extended: states.append(state.value))
...     await engine.login_room("doc-room", User("pi-42", "Room 42"), RoomConfig(is_user_status_notify=True))
...     await engine.destroy()
...     return states
>>> asyncio.run(visit(janus_url))
['connecting', 'connected', 'disconnected']
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .aiortc_adapt import limit_host_interfaces
from .errors import EngineError, ErrorCode
from .events import EventEmitter
from .ids import check_room_id, check_stream_id, check_user_id, check_user_name
from .link import Link
from .naming import IdType
from .player import Player
from .profile import EngineProfile, RoomConfig, Stream, User
from .publisher import Publisher
from .room import Room
from .states import PlayerState, PublisherState, RoomState, RoomStateReason
from .tracks import AudioSink, AudioSource, EncodedVideoSource, VideoSink

log = logging.getLogger(__name__)
L = TypeVar("L", bound=Link)


class Engine:
    """One endpoint in one room at a time. Use :meth:`create`."""

    def __init__(self, profile: EngineProfile) -> None:
        self.profile = profile
        self._emitter = EventEmitter()
        self._room: Room | None = None
        self._publishers: dict[str, Publisher] = {}
        self._players: dict[str, Player] = {}
        self._ending: asyncio.Task[None] | None = None
        self._destroyed = False
        self._id_types: dict[str, IdType] = {}  # server URL -> the kind of ids it uses, once learned

    @classmethod
    def create(cls, profile: EngineProfile) -> Engine:
        """Creates an engine; ICE is limited to ``profile.ice_interfaces`` if set."""
        limit_host_interfaces(profile.ice_interfaces)
        return cls(profile)

    # -- events and state ---------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        """Registers ``handler`` for ``event`` (see :data:`appliance.engine.events.EVENTS`)."""
        self._emitter.on(event, handler)

    def off(self, event: str, handler: Callable[..., Any] | None = None) -> None:
        self._emitter.off(event, handler)

    @property
    def room_id(self) -> str | None:
        return self._room.room_id if self._room else None

    @property
    def server(self) -> str | None:
        """The URL of the server the room is on (one of the profile's), once joined."""
        return self._room.server or None if self._room else None

    @property
    def room_state(self) -> RoomState:
        return self._room.state if self._room else RoomState.DISCONNECTED

    @property
    def users(self) -> list[User]:
        """The other users in the room."""
        return list(self._room.users.values()) if self._room else []

    @property
    def streams(self) -> list[Stream]:
        """The other users' streams in the room."""
        return list(self._room.streams.values()) if self._room else []

    def publisher_state(self, stream_id: str) -> PublisherState:
        link = self._publishers.get(stream_id)
        return link.state if link else PublisherState.NOT_PUBLISHING  # type: ignore[return-value]

    def player_state(self, stream_id: str) -> PlayerState:
        link = self._players.get(stream_id)
        return link.state if link else PlayerState.NOT_PLAYING  # type: ignore[return-value]

    # -- room ---------------------------------------------------------------

    async def login_room(self, room_id: str, user: User, config: RoomConfig | None = None) -> ErrorCode:
        """Logs in (creating the room if needed); reports through ``room_state_update``."""
        config = config or RoomConfig()
        try:
            check_room_id(room_id)
            if not isinstance(user, User):
                raise EngineError(ErrorCode.INVALID_USER_ID, f"user must be a User, got {user!r}")
            check_user_id(user.user_id)
            check_user_name(user.user_name)
            if not self.profile.servers or not all(isinstance(url, str) and url for url in self.profile.servers):
                raise EngineError(ErrorCode.INVALID_PARAMETER, "the profile names no server")
            if self.profile.room_ids not in ("auto", *(kind.value for kind in IdType)):
                raise EngineError(ErrorCode.INVALID_PARAMETER,
                                  f"room_ids must be 'auto', 'string' or 'number', not {self.profile.room_ids!r}")
        except EngineError as exc:
            return self._refuse_login(str(room_id), exc)
        if self._destroyed:
            return self._refuse_login(room_id, EngineError(ErrorCode.INVALID_PARAMETER, "the engine is destroyed"))
        if self._room is not None:
            return self._refuse_login(
                room_id, EngineError(ErrorCode.ALREADY_LOGGED_IN, f"already logged in to room {self._room.room_id!r}")
            )
        room = Room(self.profile, self._emitter, room_id, user, config, self._room_ended, self._id_types)
        self._room = room
        code = await room.login()
        if code is not ErrorCode.SUCCESS and self._room is room:
            self._room = None
        return code

    def _refuse_login(self, room_id: str, exc: EngineError) -> ErrorCode:
        log.error("login to room %r refused: %s", room_id, exc)
        self._emitter.emit(
            "room_state_update", room_id, RoomState.DISCONNECTED, exc.code,
            {"reason": RoomStateReason.LOGIN_FAILED, "detail": exc.message},
        )
        return exc.code

    async def logout_room(self, room_id: str | None = None) -> ErrorCode:
        """Stops every publisher and player, then leaves the room."""
        room = self._room
        if room is None or (room_id is not None and room_id != room.room_id):
            return ErrorCode.NOT_LOGGED_IN
        await self._end_room(room, ErrorCode.SUCCESS, RoomStateReason.LOGGED_OUT)
        return ErrorCode.SUCCESS

    def _room_ended(self, code: ErrorCode) -> None:
        """The room ended by itself: kicked out, or reconnecting gave up."""
        room = self._room
        if room is not None and self._ending is None:
            reason = RoomStateReason.KICKED_OUT if code is ErrorCode.KICKED_OUT else RoomStateReason.RECONNECT_FAILED
            self._ending = asyncio.create_task(self._end_room(room, code, reason))

    async def _end_room(self, room: Room, code: ErrorCode, reason: RoomStateReason) -> None:
        links: list[Link] = [*self._publishers.values(), *self._players.values()]
        self._publishers.clear()
        self._players.clear()
        await asyncio.gather(*(link.stop(code) for link in links))
        if reason is not RoomStateReason.RECONNECT_FAILED:  # that one has closed itself
            await room.logout(reason, code)
        if self._room is room:
            self._room = None
        if self._ending is asyncio.current_task():
            self._ending = None

    # -- publishing ---------------------------------------------------------

    async def start_publishing_stream(
        self,
        stream_id: str,
        video: EncodedVideoSource | None = None,
        audio: AudioSource | None = None,
    ) -> ErrorCode:
        """Publishes ``video`` (pre-encoded H.264) and/or ``audio`` as ``stream_id``.

        Returns at once; ``publisher_state_update`` reports requesting, then
        publishing, or not publishing with the error (a stream id another user
        already publishes gives ``STREAM_ID_IN_USE``).
        """
        try:
            check_stream_id(stream_id)
            room = self._require_room()
            if video is None and audio is None:
                raise EngineError(ErrorCode.INVALID_PARAMETER, f"stream {stream_id!r} needs a video or an audio source")
            if video is not None and not isinstance(video, EncodedVideoSource):
                raise EngineError(ErrorCode.INVALID_PARAMETER, f"stream {stream_id!r}: {video!r} is not a video source")
            if audio is not None and not isinstance(audio, AudioSource):
                raise EngineError(ErrorCode.INVALID_PARAMETER, f"stream {stream_id!r}: {audio!r} is not an audio source")
            _check_not_running(self._publishers, stream_id, ErrorCode.ALREADY_PUBLISHING)
        except EngineError as exc:
            log.error("publish refused: %s", exc)
            return exc.code
        publisher = Publisher(room, self._emitter, stream_id, video, audio)
        self._publishers[stream_id] = publisher
        publisher.start()
        return ErrorCode.SUCCESS

    async def stop_publishing_stream(self, stream_id: str) -> ErrorCode:
        """Stops publishing ``stream_id``; the others see it deleted."""
        return await _stop(self._publishers, stream_id)

    # -- playing ------------------------------------------------------------

    async def start_playing_stream(
        self,
        stream_id: str,
        video_sink: VideoSink | None = None,
        audio_sink: AudioSink | None = None,
    ) -> ErrorCode:
        """Plays ``stream_id``: decoded frames go to the sinks.

        ``player_state_update`` reports requesting until the stream is in the
        room and its media flows, then playing.
        """
        try:
            check_stream_id(stream_id)
            room = self._require_room()
            _check_not_running(self._players, stream_id, ErrorCode.ALREADY_PLAYING)
        except EngineError as exc:
            log.error("play refused: %s", exc)
            return exc.code
        player = Player(room, self._emitter, stream_id, video_sink, audio_sink)
        self._players[stream_id] = player
        player.start()
        return ErrorCode.SUCCESS

    async def stop_playing_stream(self, stream_id: str) -> ErrorCode:
        """Stops playing ``stream_id``; its sinks get no more frames."""
        return await _stop(self._players, stream_id)

    # -- teardown -----------------------------------------------------------

    async def destroy(self) -> None:
        """Logs out and waits for its tasks.

        Sources and sinks stay open: they were lent by the application, which
        closes them when it is done (a daemon that rejoins another room hands
        the same camera to a new engine).
        """
        self._destroyed = True
        ending = self._ending
        if ending is not None:
            await asyncio.gather(ending, return_exceptions=True)
        if self._room is not None:
            await self.logout_room()
        await self._emitter.drain()

    def _require_room(self) -> Room:
        if self._room is None or self._ending is not None:
            raise EngineError(ErrorCode.NOT_LOGGED_IN, "log in to a room first")
        return self._room


def _check_not_running(links: Mapping[str, Link], stream_id: str, code: ErrorCode) -> None:
    existing = links.get(stream_id)
    if existing is not None and not existing.finished:
        raise EngineError(code, f"stream {stream_id!r} is already {existing.ACTIVE.value}")


async def _stop(links: dict[str, L], stream_id: str) -> ErrorCode:
    link = links.pop(stream_id, None)
    if link is not None:
        await link.stop()
    return ErrorCode.SUCCESS
