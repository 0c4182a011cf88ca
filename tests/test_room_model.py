"""The room model's rules, each against a real Janus."""

from __future__ import annotations

import asyncio
import socket

import pytest

from appliance.engine import (
    Engine,
    EngineProfile,
    ErrorCode,
    PlayerState,
    PublisherState,
    RoomConfig,
    RoomState,
    RoomStateReason,
    UpdateType,
    User,
)
from appliance.media import EncoderSettings
from appliance.testing import TestPatternSource, ToneSource

from .conftest import Recorder, profile_for

NOTIFY = RoomConfig(is_user_status_notify=True)


def user_updates(recorder: Recorder) -> list[tuple[UpdateType, list[str]]]:
    return [(args[1], sorted(u.user_id for u in args[2])) for args in recorder.of("room_user_update")]


def stream_updates(recorder: Recorder) -> list[tuple[UpdateType, list[str]]]:
    return [(args[1], sorted(s.stream_id for s in args[2])) for args in recorder.of("room_stream_update")]


async def test_user_events(janus, room_id, engines):
    a, rec_a = engines(profile_for(janus))
    b, rec_b = engines(profile_for(janus))
    c, rec_c = engines(profile_for(janus))
    quiet, rec_quiet = engines(profile_for(janus))
    await a.login_room(room_id, User("alice"), NOTIFY)
    await b.login_room(room_id, User("bob"), NOTIFY)
    await quiet.login_room(room_id, User("quiet"), RoomConfig(is_user_status_notify=False))

    # Users already present arrive as one ADD.
    await c.login_room(room_id, User("carol"), NOTIFY)
    assert user_updates(rec_c) == [(UpdateType.ADD, ["alice", "bob", "quiet"])]

    # A later joiner arrives as ADD, a leaver as DELETE.
    await rec_a.wait_for(lambda: (UpdateType.ADD, ["carol"]) in user_updates(rec_a), what="carol ADD")
    await b.logout_room(room_id)
    await rec_a.wait_for(lambda: (UpdateType.DELETE, ["bob"]) in user_updates(rec_a), what="bob DELETE")
    assert user_updates(rec_a) == [
        (UpdateType.ADD, ["bob"]),
        (UpdateType.ADD, ["quiet"]),
        (UpdateType.ADD, ["carol"]),
        (UpdateType.DELETE, ["bob"]),
    ]
    assert {u.user_id for u in a.users} == {"carol", "quiet"}
    # Nothing arrives when notification is off, although the user list is kept.
    assert rec_quiet.of("room_user_update") == []
    assert {u.user_id for u in quiet.users} == {"alice", "carol"}


async def test_several_streams_per_user_and_stop_publishing(janus, room_id, engines):
    a, rec_a = engines(profile_for(janus))
    b, rec_b = engines(profile_for(janus))
    await a.login_room(room_id, User("alice"))
    await a.start_publishing_stream("alice-cam", video=TestPatternSource(EncoderSettings(width=640, height=360)))
    await a.start_publishing_stream("alice-mic", audio=ToneSource(440))
    await rec_a.wait_for(
        lambda: a.publisher_state("alice-cam") is a.publisher_state("alice-mic") is PublisherState.PUBLISHING
    )
    await b.login_room(room_id, User("bob"))
    assert stream_updates(rec_b) == [(UpdateType.ADD, ["alice-cam", "alice-mic"])]
    frames: list[object] = []
    await b.start_playing_stream("alice-cam", video_sink=frames.append)
    await rec_b.wait_for(lambda: len(frames) >= 10, what="frames")

    await a.stop_publishing_stream("alice-cam")
    assert rec_a.states("publisher_state_update", "alice-cam")[-1] is PublisherState.NOT_PUBLISHING
    await rec_b.wait_for(lambda: (UpdateType.DELETE, ["alice-cam"]) in stream_updates(rec_b), what="DELETE")
    # The player stops receiving at once and says why; the app then stops it.
    await rec_b.wait_for(lambda: b.player_state("alice-cam") is PlayerState.REQUESTING, what="player stops")
    last = [args for args in rec_b.of("player_state_update") if args[0] == "alice-cam"][-1]
    assert last[2] is ErrorCode.STREAM_DELETED
    count = len(frames)
    await asyncio.sleep(0.3)
    assert len(frames) == count, "no frames after the stream was deleted"
    await b.stop_playing_stream("alice-cam")
    assert rec_b.states("player_state_update", "alice-cam")[-1] is PlayerState.NOT_PLAYING
    assert [s.stream_id for s in b.streams] == ["alice-mic"]


async def test_duplicate_stream_id_by_another_user_fails(janus, room_id, engines):
    a, rec_a = engines(profile_for(janus))
    b, rec_b = engines(profile_for(janus))
    await a.login_room(room_id, User("alice"))
    await b.login_room(room_id, User("bob"))
    await a.start_publishing_stream("shared", audio=ToneSource())
    await rec_a.wait_for(lambda: a.publisher_state("shared") is PublisherState.PUBLISHING)
    tone = ToneSource()
    assert await b.start_publishing_stream("shared", audio=tone) == ErrorCode.SUCCESS
    await rec_b.wait_for(lambda: b.publisher_state("shared") is PublisherState.NOT_PUBLISHING, what="publish fails")
    assert [args[1:3] for args in rec_b.of("publisher_state_update")] == [
        (PublisherState.REQUESTING, ErrorCode.SUCCESS),
        (PublisherState.NOT_PUBLISHING, ErrorCode.STREAM_ID_IN_USE),
    ]
    assert a.publisher_state("shared") is PublisherState.PUBLISHING
    # Bob's login is still fine and he can publish under another id.
    assert b.room_state is RoomState.CONNECTED
    await b.start_publishing_stream("bob-own", audio=tone)
    await rec_b.wait_for(lambda: b.publisher_state("bob-own") is PublisherState.PUBLISHING)


async def test_same_user_logging_in_twice_kicks_out_the_first(janus, room_id, engines):
    first, rec_first = engines(profile_for(janus))
    second, rec_second = engines(profile_for(janus))
    await first.login_room(room_id, User("pi-42"))
    await first.start_publishing_stream("pi-42-mic", audio=ToneSource())
    await rec_first.wait_for(lambda: first.publisher_state("pi-42-mic") is PublisherState.PUBLISHING)
    assert await second.login_room(room_id, User("pi-42")) == ErrorCode.SUCCESS
    await rec_first.wait_for(lambda: first.room_state is RoomState.DISCONNECTED, what="kicked out")
    room_id_, state, code, extended = rec_first.of("room_state_update")[-1]
    assert (room_id_, state, code, extended["reason"]) == (
        room_id, RoomState.DISCONNECTED, ErrorCode.KICKED_OUT, RoomStateReason.KICKED_OUT,
    )
    assert first.publisher_state("pi-42-mic") is PublisherState.NOT_PUBLISHING
    assert rec_first.of("publisher_state_update")[-1][1:3] == (PublisherState.NOT_PUBLISHING, ErrorCode.KICKED_OUT)
    await asyncio.sleep(0.5)
    assert second.room_state is RoomState.CONNECTED, "the newer login stays"
    # The kicked-out engine can be used again.
    assert await first.start_publishing_stream("x", audio=ToneSource()) == ErrorCode.NOT_LOGGED_IN


async def test_logout_stops_publishing_and_playing(janus, room_id, engines):
    a, rec_a = engines(profile_for(janus))
    b, rec_b = engines(profile_for(janus))
    await a.login_room(room_id, User("alice"))
    await a.start_publishing_stream("alice-mic", audio=ToneSource())
    await b.login_room(room_id, User("bob"))
    await b.start_publishing_stream("bob-mic", audio=ToneSource())
    await b.start_playing_stream("alice-mic")
    await rec_b.wait_for(lambda: b.player_state("alice-mic") is PlayerState.PLAYING)
    await rec_b.wait_for(lambda: b.publisher_state("bob-mic") is PublisherState.PUBLISHING)
    assert await b.logout_room(room_id) == ErrorCode.SUCCESS
    assert b.publisher_state("bob-mic") is PublisherState.NOT_PUBLISHING
    assert b.player_state("alice-mic") is PlayerState.NOT_PLAYING
    assert rec_b.of("room_state_update")[-1][1:3] == (RoomState.DISCONNECTED, ErrorCode.SUCCESS)
    assert rec_b.of("room_state_update")[-1][3]["reason"] is RoomStateReason.LOGGED_OUT
    await rec_a.wait_for(lambda: not a.streams, what="bob's stream gone for alice")


class CountingListener:
    """A TCP port that counts connection attempts (proves nothing was sent)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.setblocking(False)
        self.url = f"ws://127.0.0.1:{self.sock.getsockname()[1]}/"

    def attempts(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.mark.parametrize(
    ("room", "user_id", "code"),
    [
        ("r" * 129, "u", ErrorCode.INVALID_ROOM_ID),
        ("", "u", ErrorCode.INVALID_ROOM_ID),
        ("room with spaces", "u", ErrorCode.INVALID_ROOM_ID),
        ("room:colon", "u", ErrorCode.INVALID_ROOM_ID),
        ("room", "", ErrorCode.INVALID_USER_ID),
        ("room", "u" * 65, ErrorCode.INVALID_USER_ID),
        ("room", "bad/slash", ErrorCode.INVALID_USER_ID),
        ("room", "ünïcode", ErrorCode.INVALID_USER_ID),
    ],
)
async def test_invalid_ids_fail_without_traffic(room, user_id, code, engines, caplog):
    listener = CountingListener()
    engine, rec = engines(EngineProfile(server=listener.url))
    assert await engine.login_room(room, User(user_id)) == code
    assert rec.of("room_state_update")[-1][1:3] == (RoomState.DISCONNECTED, code)
    assert rec.of("room_state_update")[-1][3]["reason"] is RoomStateReason.LOGIN_FAILED
    assert listener.attempts() == 0, "nothing was sent"
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is None, "one clear line, no traceback"
    assert "id" in errors[0].getMessage()


async def test_invalid_stream_ids_and_call_order(janus, room_id, engines):
    engine, rec = engines(profile_for(janus))
    tone = ToneSource()
    assert await engine.start_publishing_stream("s", audio=tone) == ErrorCode.NOT_LOGGED_IN
    assert await engine.start_playing_stream("s") == ErrorCode.NOT_LOGGED_IN
    await engine.login_room(room_id, User("alice"))
    assert await engine.start_publishing_stream("s" * 257, audio=tone) == ErrorCode.INVALID_STREAM_ID
    assert await engine.start_publishing_stream("", audio=tone) == ErrorCode.INVALID_STREAM_ID
    assert await engine.start_playing_stream("a b") == ErrorCode.INVALID_STREAM_ID
    assert await engine.start_publishing_stream("s") == ErrorCode.INVALID_PARAMETER
    assert await engine.login_room(room_id, User("alice")) == ErrorCode.ALREADY_LOGGED_IN
    assert rec.of("publisher_state_update") == [] and rec.of("player_state_update") == []


async def test_unreachable_server_is_a_room_state(engines):
    listener = CountingListener()
    url = listener.url
    listener.sock.close()  # nothing listens there now
    engine, rec = engines(EngineProfile(server=url, request_timeout=2))
    assert await engine.login_room("room", User("alice")) == ErrorCode.SERVER_UNREACHABLE
    assert [args[1] for args in rec.of("room_state_update")] == [RoomState.CONNECTING, RoomState.DISCONNECTED]
    assert rec.of("room_state_update")[-1][2] is ErrorCode.SERVER_UNREACHABLE
    assert engine.room_state is RoomState.DISCONNECTED


async def test_destroy_stops_every_task_and_leaves_lent_sources_open(janus, room_id):
    before = set(asyncio.all_tasks())
    a = Engine.create(profile_for(janus))
    b = Engine.create(profile_for(janus))
    rec_b = Recorder(b)
    video, audio = TestPatternSource(EncoderSettings(width=320, height=180)), ToneSource()
    await a.login_room(room_id, User("alice"))
    await a.start_publishing_stream("cam", video=video, audio=audio)
    await b.login_room(room_id, User("bob"))
    await b.start_playing_stream("cam")
    await rec_b.wait_for(lambda: b.player_state("cam") is PlayerState.PLAYING)
    await a.destroy()
    await b.destroy()
    assert not video.closed and not audio.closed, "the application lent them; it closes them"
    left: list[asyncio.Task[object]] = []
    for _ in range(40):  # aiortc's own cancelled tasks finish over a few loop turns
        await asyncio.sleep(0.05)
        left = [t for t in set(asyncio.all_tasks()) - before if not t.done()]
        if not left:
            break
    assert left == [], f"tasks still running: {left}"


async def test_a_stop_during_a_teardown_still_closes_the_peer_connection(janus, room_id, monkeypatch):
    """B's player tears down when A's stream goes; B is destroyed while that
    close is under way. The close must still finish: no ICE transport of
    aiortc's left running."""
    from aiortc import RTCPeerConnection
    from aiortc.rtcicetransport import RTCIceTransport

    real_close = RTCPeerConnection.close
    closing: list[RTCPeerConnection] = []

    async def slow_close(self):  # type: ignore[no-untyped-def]
        closing.append(self)
        await asyncio.sleep(0.3)  # long enough for the stop to land inside it
        await real_close(self)

    monkeypatch.setattr(RTCPeerConnection, "close", slow_close)
    a, b = Engine.create(profile_for(janus)), Engine.create(profile_for(janus))
    rec_b = Recorder(b)
    video = TestPatternSource(EncoderSettings(width=160, height=90))
    await a.login_room(room_id, User("alice"))
    await a.start_publishing_stream("cam", video=video)
    await b.login_room(room_id, User("bob"))
    await b.start_playing_stream("cam")
    await rec_b.wait_for(lambda: b.player_state("cam") is PlayerState.PLAYING)
    players = [link._pc for link in b._players.values()]
    transports: list[RTCIceTransport] = [t.receiver.transport.transport for pc in players
                                         for t in pc.getTransceivers()]
    # A's publisher closes its own connection too; B's may start closing
    # before A's close is over (it was, under emulation).
    await a.stop_publishing_stream("cam")
    await rec_b.wait_for(lambda: any(pc in closing for pc in players), timeout=10,
                         what="B's player closing its connection")
    await b.destroy()  # ...and is stopped during it  # ...and is stopped during it
    await a.destroy()
    video.close()
    assert transports and all(t.state == "closed" for t in transports), [t.state for t in transports]
