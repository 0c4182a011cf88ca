"""One logged-in room: the Janus session, presence, membership, reconnection.

A logged-in user is a VideoRoom participant that never publishes (its
*presence*); each published stream is a participant of its own (see
:mod:`.naming` for their ids and names on string and numeric servers). The
room learns which kind of ids the server uses on first contact, keeps the
lists of other users and streams, turns VideoRoom events into the room
model's events, notices a newer login of the same user (kicked out) and,
when the socket or the session is lost, reconnects with backoff and reports
the differences it finds.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .backoff import Backoff
from .errors import UNREACHABLE, EngineError, ErrorCode
from .events import EventEmitter
from .janus import (
    UNAUTHORIZED,
    VIDEOROOM,
    VIDEOROOM_INVALID_ELEMENT,
    VIDEOROOM_ROOM_EXISTS,
    JanusConnection,
    JanusError,
)
from .naming import (
    LOGIN_BITS,
    IdType,
    Participant,
    feed_key,
    parse_participant,
    presence_display,
    presence_id,
    wire_room,
)
from .profile import EngineProfile, RoomConfig, Stream, User
from .servers import server_order
from .states import RoomState, RoomStateReason, UpdateType
from .tokens import token_expiry

log = logging.getLogger(__name__)

USER_NOTIFY_LIMIT = 500


@dataclass
class _Probe:
    """A server asked about the room, with the connection and handle that asked."""

    url: str
    connection: JanusConnection
    handle: int
    exists: bool
    occupied: bool


class Room:
    """Membership and connection of one login; the engine owns it.

    Links (publishers and players) wait with :meth:`wait_ready` and watch
    :attr:`broken` of the connection they used.
    """

    def __init__(
        self,
        profile: EngineProfile,
        emitter: EventEmitter,
        room_id: str,
        user: User,
        config: RoomConfig,
        on_ended: Callable[[ErrorCode], None],
        id_types: dict[str, IdType],
    ) -> None:
        self.profile = profile
        self.room_id = room_id
        self.user = user
        self.config = config
        self.login_id = f"{secrets.randbits(LOGIN_BITS):04x}"
        # The kind of ids each server uses, learned on first contact and kept (shared by the engine's logins).
        self._id_types = id_types
        # What a subscriber must show the server when the room has require_pvtid.
        self.private_id: int | None = None
        self.state = RoomState.DISCONNECTED
        self.connection: JanusConnection | None = None
        self.server = ""  # the URL of the server the room is on, once joined
        # Set once the connection a link used has failed (after RECONNECTING is reported).
        self.broken = asyncio.Event()
        self._changed = asyncio.Event()
        self.users: dict[str, User] = {}
        self.streams: dict[str, Stream] = {}
        self._emitter = emitter
        self._on_ended = on_ended
        self._generation = 0
        self._presence_handle: int | None = None
        self._early_events: list[dict[str, Any]] | None = None
        self._presences: dict[str, Participant] = {}  # feed id -> other users' presences
        self._stream_feeds: dict[str, Participant] = {}  # stream id -> participant
        self._listeners: dict[int, Callable[[dict[str, Any]], None]] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._kicked = False

    # -- public ---------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.state is RoomState.CONNECTED and self.connection is not None

    @property
    def ids(self) -> IdType:
        return self._id_types.get(self.server, IdType.STRING)

    @property
    def wire_id(self) -> str | int:
        """The room id as this server wants it."""
        return wire_room(self.room_id, self.ids)

    def join_fields(self) -> dict[str, Any]:
        """What every join of this login carries: the room, and its PIN when it has one."""
        fields: dict[str, Any] = {"room": self.wire_id}
        if self.config.pin:
            fields["pin"] = self.config.pin
        return fields

    def feed_of(self, stream_id: str) -> str | int | None:
        participant = self._stream_feeds.get(stream_id)
        return participant.feed_id if participant else None

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Waits until ``predicate`` holds, looking again at every change."""
        while not predicate():
            await self._changed.wait()

    async def wait_ready(self, predicate: Callable[[], bool] = lambda: True) -> JanusConnection:
        """Waits until the room is connected and ``predicate`` holds."""
        await self.wait_until(lambda: self.ready and predicate())
        assert self.connection is not None
        return self.connection

    def listen(self, handle_id: int, callback: Callable[[dict[str, Any]], None]) -> None:
        """Sends Janus events of ``handle_id`` to ``callback``."""
        self._listeners[handle_id] = callback

    def unlisten(self, handle_id: int) -> None:
        self._listeners.pop(handle_id, None)

    async def login(self) -> ErrorCode:
        """Connects and joins; reports each step as a room state."""
        self._set_state(RoomState.CONNECTING, ErrorCode.SUCCESS, RoomStateReason.LOGGING_IN)
        try:
            joined = await self._connect_and_join()
        except EngineError as exc:
            detail = self._explain(exc)
            log.error("login to room %r failed: %s", self.room_id, detail)
            self._set_state(RoomState.DISCONNECTED, exc.code, RoomStateReason.LOGIN_FAILED, detail)
            return exc.code
        self._set_state(RoomState.CONNECTED, ErrorCode.SUCCESS, RoomStateReason.LOGGED_IN)
        self._apply_membership(joined, first=True)
        self._notify()
        self._supervisor = asyncio.create_task(self._supervise(), name=f"room-{self.room_id}")
        return ErrorCode.SUCCESS

    async def logout(self, reason: RoomStateReason = RoomStateReason.LOGGED_OUT, code: ErrorCode = ErrorCode.SUCCESS) -> None:
        """Leaves the room and closes the session; reports DISCONNECTED."""
        if self._supervisor is not None and self._supervisor is not asyncio.current_task():
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        self._supervisor = None
        await self._close_connection()
        self._set_state(RoomState.DISCONNECTED, code, reason)
        self.broken.set()
        self._notify()

    # -- connection -----------------------------------------------------------

    async def _connect_and_join(self) -> dict[str, Any]:
        probe = await self._choose_server()
        connection, handle = probe.connection, probe.handle
        try:
            if probe.url != self.server:
                log.info("room %r: on server %s", self.room_id, probe.url)
            self.server = probe.url
            # Room events can follow the "joined" answer before it is applied:
            # keep them until then (see _apply_membership).
            self._presence_handle, self._early_events = handle, []
            if not probe.exists:
                await self._create_room(connection, handle)
            self._generation += 1
            joined, _ = await connection.message(
                handle,
                {
                    "request": "join",
                    "ptype": "publisher",
                    **self.join_fields(),
                    "id": presence_id(self.user, self.login_id, self._generation, self.ids),
                    "display": presence_display(self.user, self.ids),
                },
            )
            private_id = joined.get("private_id")
            self.private_id = private_id if isinstance(private_id, int) and not isinstance(private_id, bool) else None
        except BaseException:
            self._early_events = None
            await connection.close()
            raise
        self.connection = connection
        self.broken = asyncio.Event()
        return joined

    async def _choose_server(self) -> _Probe:
        """The server the room is on: asks every server at once and decides in
        the room's order (see :mod:`.servers`), closing the connections it
        does not keep. With every server failing, raises the most telling error."""
        order = server_order(self.room_id, self.profile.servers)
        probes = {url: asyncio.create_task(self._probe(url)) for url in order}
        chosen: _Probe | None = None
        errors: list[EngineError] = []
        try:
            answered: list[_Probe] = []
            for url in order:
                try:
                    answered.append(await probes[url])
                except EngineError as exc:
                    errors.append(exc)
                    if len(order) > 1:
                        log.info("room %r: server %s: %s", self.room_id, url, exc.message)
                    continue
                if answered[-1].occupied:
                    break
            # Where people are, else where the room is, else where it can be made.
            chosen = next((p for p in answered if p.occupied), None) or next(
                (p for p in answered if p.exists), None) or (answered[0] if answered else None)
        finally:
            for task in probes.values():
                task.cancel()
            for result in await asyncio.gather(*probes.values(), return_exceptions=True):
                if isinstance(result, _Probe) and result is not chosen:
                    await result.connection.close()
        if chosen is None:
            # A refusal says more than an unreachable server, and stops the retries.
            raise next((e for e in errors if e.code not in UNREACHABLE), errors[0])
        return chosen

    async def _probe(self, url: str) -> _Probe:
        """Connects to ``url`` and asks whether the room is there and has participants."""
        connection = JanusConnection(
            url,
            on_event=self._on_janus_event,
            token=self.config.token,
            request_timeout=self.profile.request_timeout,
            keepalive_interval=self.profile.keepalive_interval,
            ping_interval=self.profile.ping_interval,
            ping_timeout=self.profile.ping_timeout,
        )
        await connection.open()
        try:
            handle = await connection.attach(VIDEOROOM)
            exists = await self._learn_id_type(connection, handle, url)
            room = wire_room(self.room_id, self._id_types[url])
            if exists is None:
                answer, _ = await connection.message(handle, {"request": "exists", "room": room})
                exists = answer.get("exists") is True
            occupied = False
            if exists and len(self.profile.servers) > 1:
                answer, _ = await connection.message(handle, {"request": "listparticipants", "room": room})
                occupied = bool(_list(answer.get("participants")))
        except BaseException:
            await connection.close()
            raise
        return _Probe(url, connection, handle, exists, occupied)

    async def _learn_id_type(self, connection: JanusConnection, handle: int, url: str) -> bool | None:
        """Sets the server's kind of ids: as configured, or (``auto``) from its
        answer to a question naming the room as a string, on first contact.
        Returns whether the room exists when that question told."""
        if url in self._id_types:
            return None
        if self.profile.room_ids != "auto":
            self._id_types[url] = IdType(self.profile.room_ids)
            return None
        exists = None
        try:
            answer, _ = await connection.message(handle, {"request": "exists", "room": self.room_id})
            exists = answer.get("exists") is True
            learned = IdType.STRING
        except JanusError as exc:
            # "Invalid element type (room should be a positive integer)"
            if exc.janus_code != VIDEOROOM_INVALID_ELEMENT or "integer" not in exc.message:
                raise
            learned = IdType.NUMBER
        log.info("server %s uses %s room ids", url, learned.value)
        self._id_types[url] = learned
        return exists

    async def _create_room(self, connection: JanusConnection, handle: int) -> None:
        request: dict[str, Any] = {
            "request": "create",
            **self.join_fields(),
            "permanent": False,
            "description": self.room_id,
            "publishers": self.profile.room_max_publishers,
            "videocodec": self.profile.room_video_codec,
            "audiocodec": self.profile.room_audio_codec,
            "h264_profile": self.profile.room_h264_profile,
            "notify_joining": True,
        }
        if self.profile.room_admin_key:
            request["admin_key"] = self.profile.room_admin_key
        try:
            await connection.message(handle, request)
        except JanusError as exc:
            if exc.janus_code != VIDEOROOM_ROOM_EXISTS:  # made by someone else since we asked
                raise

    async def _close_connection(self) -> None:
        connection, self.connection = self.connection, None
        self._presence_handle = None
        if connection is not None:
            await connection.close()

    def _explain(self, exc: EngineError) -> str:
        """The error's message, saying so when a refused token has expired or it is the room's PIN."""
        if isinstance(exc, JanusError) and exc.code is ErrorCode.AUTH_FAILED and "pin)" in exc.message:
            given = "the PIN it was given" if self.config.pin else "no PIN"
            return f"room {self.room_id!r} has a PIN and refused {given} ({exc.message})"
        if isinstance(exc, JanusError) and exc.janus_code == UNAUTHORIZED and self.config.token:
            expiry = token_expiry(self.config.token)
            if expiry is not None and expiry <= time.time():
                return f"{exc.message} (the token expired at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(expiry))} UTC)"
        return exc.message

    async def _supervise(self) -> None:
        while True:
            assert self.connection is not None
            await self.connection.lost.wait()
            reason = self.connection.lost_reason
            code = reason.code if reason else ErrorCode.NETWORK_INTERRUPTED
            log.warning("room %r: %s; reconnecting", self.room_id, reason.message if reason else "connection lost")
            await self._close_connection()
            self._set_state(RoomState.CONNECTING, code, RoomStateReason.RECONNECTING)
            self.broken.set()
            self._notify()
            if not await self._reconnect():
                return

    async def _reconnect(self) -> bool:
        backoff = Backoff(self.profile.reconnect_min_delay, self.profile.reconnect_max_delay)
        started = time.monotonic()
        while True:
            try:
                joined = await self._connect_and_join()
                break
            except EngineError as exc:
                if exc.code is ErrorCode.AUTH_FAILED or (
                    self.profile.reconnect_timeout
                    and time.monotonic() - started > self.profile.reconnect_timeout
                ):
                    detail = self._explain(exc)
                    log.error("room %r: giving up reconnecting: %s", self.room_id, detail)
                    self._set_state(RoomState.DISCONNECTED, exc.code, RoomStateReason.RECONNECT_FAILED, detail)
                    self._notify()
                    self._on_ended(exc.code)
                    return False
                await asyncio.sleep(backoff.next_delay())
        log.info("room %r: reconnected after %.1f s", self.room_id, time.monotonic() - started)
        self._set_state(RoomState.CONNECTED, ErrorCode.SUCCESS, RoomStateReason.RECONNECTED)
        self._apply_membership(joined, first=False)
        self._notify()
        return True

    def _notify(self) -> None:
        """Wakes everything waiting in :meth:`wait_ready` to look again."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _set_state(self, state: RoomState, code: ErrorCode, reason: RoomStateReason, detail: str = "") -> None:
        self.state = state
        extended: dict[str, Any] = {"reason": reason}
        if detail:
            extended["detail"] = detail
        self._emitter.emit("room_state_update", self.room_id, state, code, extended)

    # -- membership -----------------------------------------------------------

    def _apply_membership(self, joined: dict[str, Any], first: bool) -> None:
        """Replaces the lists with the server's view and reports the difference,
        then applies the events that arrived while the answer was on its way."""
        early, self._early_events = self._early_events or [], None
        old_users, old_streams = dict(self.users), dict(self.streams)
        self._presences.clear()
        self._stream_feeds.clear()
        for entry in _list(joined.get("attendees")) + _list(joined.get("publishers")):
            participant = parse_participant(entry)
            if participant is None:
                continue
            if participant.user.user_id == self.user.user_id and participant.login not in (None, self.login_id):
                if not first:  # a newer login of ours took over while we were away
                    self._kick()
                    return
                continue  # an older login of ours; it will see us and leave
            if participant.is_presence:
                self._presences[participant.key] = participant
            if participant.stream_id is not None and "streams" in entry:
                self._stream_feeds[participant.stream_id] = participant
        self._rebuild_lists()
        self._report(old_users, self.users, old_streams, self.streams)
        for message in early:
            self._on_janus_event(self._presence_handle or 0, message)

    def _rebuild_lists(self) -> None:
        # A room made without notify_joining lists no presences: a user who
        # publishes is still known by their streams.
        self.users = {
            p.user.user_id: p.user
            for p in [*self._stream_feeds.values(), *self._presences.values()]
            if p.user.user_id != self.user.user_id
        }
        self.streams = {
            stream_id: Stream(stream_id, p.user)
            for stream_id, p in self._stream_feeds.items()
            if p.user.user_id != self.user.user_id
        }

    def _report(
        self,
        old_users: dict[str, User],
        new_users: dict[str, User],
        old_streams: dict[str, Stream],
        new_streams: dict[str, Stream],
    ) -> None:
        added_users = [u for k, u in new_users.items() if k not in old_users]
        gone_users = [u for k, u in old_users.items() if k not in new_users]
        notify = self.config.is_user_status_notify and len(new_users) + 1 <= USER_NOTIFY_LIMIT
        if notify and added_users:
            self._emitter.emit("room_user_update", self.room_id, UpdateType.ADD, added_users)
        if notify and gone_users:
            self._emitter.emit("room_user_update", self.room_id, UpdateType.DELETE, gone_users)
        added_streams = [s for k, s in new_streams.items() if k not in old_streams]
        gone_streams = [s for k, s in old_streams.items() if k not in new_streams]
        if added_streams:
            self._emitter.emit("room_stream_update", self.room_id, UpdateType.ADD, added_streams)
        if gone_streams:
            self._emitter.emit("room_stream_update", self.room_id, UpdateType.DELETE, gone_streams)

    def _on_janus_event(self, handle_id: int, message: dict[str, Any]) -> None:
        if handle_id != self._presence_handle:
            listener = self._listeners.get(handle_id)
            if listener is not None:
                listener(message)
            return
        if self._early_events is not None:
            self._early_events.append(message)
            return
        plugindata = message.get("plugindata")
        data = plugindata.get("data") if isinstance(plugindata, dict) else None
        if not isinstance(data, dict):
            return
        old_users, old_streams = dict(self.users), dict(self.streams)
        if isinstance(data.get("joining"), dict):
            joining = parse_participant(data["joining"])
            if joining is not None and joining.is_presence:
                if joining.user.user_id == self.user.user_id and joining.login not in (None, self.login_id):
                    self._kick()
                    return
                self._presences[joining.key] = joining
        for entry in _list(data.get("publishers")):
            participant = parse_participant(entry)
            if participant is not None and participant.stream_id is not None:
                self._stream_feeds[participant.stream_id] = participant
        for field in ("leaving", "unpublished", "kicked"):
            key = feed_key(data.get(field))
            if key is None:
                continue
            if field != "unpublished":  # a foreign participant that unpublishes is still there
                self._presences.pop(key, None)
            for stream_id, participant in list(self._stream_feeds.items()):
                if participant.key == key:
                    del self._stream_feeds[stream_id]
        if data.get("videoroom") == "destroyed":
            log.warning("room %r was destroyed on the server", self.room_id)
        self._rebuild_lists()
        self._report(old_users, self.users, old_streams, self.streams)
        self._notify()

    def _kick(self) -> None:
        if not self._kicked:
            self._kicked = True
            log.warning("room %r: user %r logged in elsewhere; this login is kicked out", self.room_id, self.user.user_id)
            self._on_ended(ErrorCode.KICKED_OUT)


def _list(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
