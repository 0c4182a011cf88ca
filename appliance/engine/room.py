"""One logged-in room: the Janus session, presence, membership, reconnection.

A logged-in user is a VideoRoom participant that never publishes (its
*presence*, id ``u:<user_id>:<login>.<n>``); each published stream is a
participant of its own (id ``s:<stream_id>``) whose display names its user.
The room keeps the lists of other users and streams, turns VideoRoom events
into the room model's events, notices a newer login of the same user (kicked
out) and, when the socket or the session is lost, reconnects with backoff and
reports the differences it finds.

Participants that do not follow this naming (a plain Janus client) count as a
user and, once they publish, as a stream named by their participant id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .backoff import Backoff
from .errors import EngineError, ErrorCode, one_line
from .ids import STREAM_ID_MAX, USER_ID_MAX, USER_NAME_MAX
from .events import EventEmitter
from .janus import UNAUTHORIZED, VIDEOROOM, VIDEOROOM_ROOM_EXISTS, JanusConnection, JanusError
from .profile import EngineProfile, RoomConfig, Stream, User
from .states import RoomState, RoomStateReason, UpdateType
from .tokens import token_expiry

log = logging.getLogger(__name__)

USER_NOTIFY_LIMIT = 500


def stream_feed_id(stream_id: str) -> str:
    return f"s:{stream_id}"


def user_display(user: User, login: str) -> str:
    return json.dumps({"user_id": user.user_id, "user_name": user.user_name, "login": login})


@dataclass(frozen=True)
class Participant:
    """A VideoRoom participant seen through the room model's naming."""

    feed_id: str
    user: User
    login: str | None
    stream_id: str | None  # set for stream participants and foreign ones

    @property
    def is_presence(self) -> bool:
        return self.feed_id.startswith("u:") or not self.feed_id.startswith("s:")


def parse_participant(feed_id: object, display: object) -> Participant | None:
    """A participant as the server describes it; every text in it one printable line, capped.

    Ids and names come from other clients through the server; what reaches the
    application (screens, logs, status) is cleaned here. The raw feed id is
    kept for subscribing.
    """
    if not isinstance(feed_id, str) or not feed_id:
        return None
    info: dict[str, Any] = {}
    if isinstance(display, str):
        try:
            parsed = json.loads(display)
            info = parsed if isinstance(parsed, dict) else {}
        except (ValueError, RecursionError):
            pass

    def text(value: object, limit: int) -> str:
        return one_line(value, limit) if isinstance(value, str) else ""

    if feed_id.startswith("u:"):
        user_id, _, login = feed_id[2:].partition(":")
        user = User(text(user_id, USER_ID_MAX), text(info.get("user_name"), USER_NAME_MAX))
        return Participant(feed_id, user, login.split(".")[0], None)
    if feed_id.startswith("s:"):
        user = User(text(info.get("user_id"), USER_ID_MAX), text(info.get("user_name"), USER_NAME_MAX))
        login = info.get("login") if isinstance(info.get("login"), str) else None
        return Participant(feed_id, user, login, text(feed_id[2:], STREAM_ID_MAX))
    stream_id = text(feed_id, STREAM_ID_MAX)
    return Participant(feed_id, User(stream_id, text(display, USER_NAME_MAX)), None, stream_id)


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
    ) -> None:
        self.profile = profile
        self.room_id = room_id
        self.user = user
        self.config = config
        self.login_id = secrets.token_hex(4)
        self.state = RoomState.DISCONNECTED
        self.connection: JanusConnection | None = None
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

    def feed_of(self, stream_id: str) -> str | None:
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
        connection = JanusConnection(
            self.profile.server,
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
            # Room events can follow the "joined" answer before it is applied:
            # keep them until then (see _apply_membership).
            self._presence_handle, self._early_events = handle, []
            await self._ensure_room(connection, handle)
            self._generation += 1
            joined, _ = await connection.message(
                handle,
                {
                    "request": "join",
                    "ptype": "publisher",
                    "room": self.room_id,
                    "id": f"u:{self.user.user_id}:{self.login_id}.{self._generation}",
                    "display": user_display(self.user, self.login_id),
                },
            )
        except BaseException:
            self._early_events = None
            await connection.close()
            raise
        self.connection = connection
        self.broken = asyncio.Event()
        return joined

    async def _ensure_room(self, connection: JanusConnection, handle: int) -> None:
        request: dict[str, Any] = {
            "request": "create",
            "room": self.room_id,
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
            if exc.janus_code != VIDEOROOM_ROOM_EXISTS:
                raise

    async def _close_connection(self) -> None:
        connection, self.connection = self.connection, None
        self._presence_handle = None
        if connection is not None:
            await connection.close()

    def _explain(self, exc: EngineError) -> str:
        """The error's message, saying so when a refused token has expired."""
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
            participant = parse_participant(entry.get("id"), entry.get("display"))
            if participant is None:
                continue
            if participant.user.user_id == self.user.user_id and participant.login not in (None, self.login_id):
                if not first:  # a newer login of ours took over while we were away
                    self._kick()
                    return
                continue  # an older login of ours; it will see us and leave
            if participant.is_presence:
                self._presences[participant.feed_id] = participant
            if participant.stream_id is not None and "streams" in entry:
                self._stream_feeds[participant.stream_id] = participant
        self._rebuild_lists()
        self._report(old_users, self.users, old_streams, self.streams)
        for message in early:
            self._on_janus_event(self._presence_handle or 0, message)

    def _rebuild_lists(self) -> None:
        self.users = {
            p.user.user_id: p.user for p in self._presences.values() if p.user.user_id != self.user.user_id
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
            joining = parse_participant(data["joining"].get("id"), data["joining"].get("display"))
            if joining is not None and joining.is_presence:
                if joining.user.user_id == self.user.user_id and joining.login != self.login_id:
                    self._kick()
                    return
                self._presences[joining.feed_id] = joining
        for entry in _list(data.get("publishers")):
            participant = parse_participant(entry.get("id"), entry.get("display"))
            if participant is not None and participant.stream_id is not None:
                self._stream_feeds[participant.stream_id] = participant
        for key in ("leaving", "unpublished", "kicked"):
            feed_id = data.get(key)
            if not isinstance(feed_id, str) or feed_id == "ok":
                continue
            if key != "unpublished":  # a foreign participant that unpublishes is still there
                self._presences.pop(feed_id, None)
            for stream_id, participant in list(self._stream_feeds.items()):
                if participant.feed_id == feed_id:
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
