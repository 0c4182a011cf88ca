"""The Janus deployments that exist: Janus's default numeric ids, plain display
names other clients show, and rooms its admins made in advance (a PIN,
``require_pvtid``, a codec list without H.264, a full room)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Iterator

import av
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from appliance.app.call import CallState
from appliance.app.config import ConfigError, load_config
from appliance.app.daemon import Daemon
from appliance.engine import ErrorCode, PlayerState, PublisherState, RoomConfig, RoomState, User
from appliance.engine.janus import VIDEOROOM, JanusConnection
from appliance.media import EncoderSettings
from appliance.testing import TestPatternSource, ToneSource
from appliance.testing.janus_server import LocalJanus

from .conftest import profile_for
from .daemonkit import until, write_config

PIN = "pin-739153-ok"
ROOMS = f"""
room-5001: {{ description = "PIN" pin = "{PIN}" publishers = 6 videocodec = "h264" }}
room-5002: {{ description = "private ids" require_pvtid = true publishers = 6 videocodec = "h264" }}
room-5003: {{ description = "VP8 only" publishers = 6 videocodec = "vp8" }}
room-5004: {{ description = "one publisher" publishers = 1 videocodec = "h264" }}
"""


@pytest.fixture(scope="module")
def numeric_janus() -> Iterator[LocalJanus]:
    """Janus as Debian ships it: numeric ids, and rooms its admins made."""
    with LocalJanus(string_ids=False, rooms=ROOMS) as server:
        yield server


@pytest.fixture
def numeric_room() -> str:
    return str(random.randint(10**6, 2**53 - 1))


async def participants(janus: LocalJanus, room: int | str) -> list[dict]:
    """What every other client sees: the server's own list of the room's participants."""
    connection = JanusConnection(janus.url, on_event=lambda handle, message: None)
    await connection.open()
    try:
        handle = await connection.attach(VIDEOROOM)
        data, _ = await connection.message(handle, {"request": "listparticipants", "room": room})
        return data["participants"]
    finally:
        await connection.close()


async def test_two_engines_meet_on_a_numeric_server_with_plain_names(numeric_janus, numeric_room, engines):
    alice, rec_alice = engines(profile_for(numeric_janus))
    bob, rec_bob = engines(profile_for(numeric_janus))
    config = RoomConfig(is_user_status_notify=True)
    assert await alice.login_room(numeric_room, User("alice", "Alice Liddell"), config) is ErrorCode.SUCCESS
    assert await bob.login_room(numeric_room, User("bob", "Bob"), config) is ErrorCode.SUCCESS
    await alice.start_publishing_stream("alice-main", video=TestPatternSource(EncoderSettings(320, 180, 15)),
                                        audio=ToneSource(440))
    await rec_bob.wait_for(lambda: [s.stream_id for s in bob.streams] == ["alice-main"], what="alice's stream")
    assert bob.streams[0].user == User("alice", "Alice Liddell"), "the stream's user, id and name"
    assert {u.user_id: u.user_name for u in bob.users} == {"alice": "Alice Liddell"}
    await rec_alice.wait_for(lambda: [u.user_id for u in alice.users] == ["bob"], what="bob seen by alice")
    video: list[av.VideoFrame] = []
    audio: list[av.AudioFrame] = []
    await bob.start_playing_stream("alice-main", video.append, audio.append)
    await rec_bob.wait_for(lambda: len(video) >= 10 and len(audio) >= 25, what="alice's media at bob")

    listed = await participants(numeric_janus, int(numeric_room))
    assert all(isinstance(p["id"], int) and 0 < p["id"] < 2**53 for p in listed), "numeric participant ids"
    publishers = [p for p in listed if p.get("publisher")]
    assert [p["display"] for p in publishers] == ["Alice Liddell"], "the stream shows the plain name"

    await alice.stop_publishing_stream("alice-main")
    await rec_bob.wait_for(lambda: not bob.streams, what="the stream gone")
    await alice.logout_room()
    await rec_bob.wait_for(lambda: not bob.users, what="alice gone")


async def test_a_second_login_of_the_same_user_kicks_the_first_on_a_numeric_server(numeric_janus, numeric_room,
                                                                                   engines):
    first, rec_first = engines(profile_for(numeric_janus))
    second, _ = engines(profile_for(numeric_janus))
    await first.login_room(numeric_room, User("pi", "Pi"))
    await second.login_room(numeric_room, User("pi", "Pi"))
    await rec_first.wait_for(lambda: first.room_state is RoomState.DISCONNECTED, what="the first login kicked out")
    assert second.room_state is RoomState.CONNECTED


async def test_a_room_id_that_is_not_a_number_is_refused_in_one_line_on_a_numeric_server(numeric_janus, engines):
    engine, rec = engines(profile_for(numeric_janus))
    assert await engine.login_room("board-room", User("pi")) is ErrorCode.INVALID_ROOM_ID
    detail = rec.of("room_state_update")[-1][3]["detail"]
    assert detail == ("room id 'board-room' must be a whole number from 1 to 2^53-1: "
                      "this server uses numeric room ids")


def test_check_config_refuses_a_room_id_a_numeric_server_cannot_take(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text('[server]\nroom_ids = "number"\n[room]\nid = "0042"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert str(refused.value) == (f"{path}: room.id: room id '0042' must be a whole number from 1 to 2^53-1: "
                                  "this server uses numeric room ids")


def test_a_pin_of_the_wrong_type_is_refused_without_repeating_it(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("[room]\npin = 739153\n")  # an admin who forgot the quotes
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert str(refused.value) == f"{path}: room.pin: must be a string, not an int"


# -- rooms as admins make them, through the daemon: what the screen and STATUS= say


@pytest.fixture
async def daemon_in(numeric_janus, tmp_path) -> AsyncIterator:
    Device.pin_factory = MockFactory()
    started: list[tuple[Daemon, asyncio.Task[int]]] = []

    async def start(room: str, pin: str = "") -> Daemon:
        folder = tmp_path / str(len(started))
        folder.mkdir()
        path = write_config(folder, numeric_janus.url, room)
        if pin:
            path.write_text(path.read_text().replace("[room]\n", f'[room]\npin = "{pin}"\n'))
        daemon = Daemon(load_config(path), path)
        started.append((daemon, asyncio.create_task(daemon.run())))
        while not hasattr(daemon, "control"):
            await asyncio.sleep(0.05)
        daemon.call.join()
        return daemon

    yield start
    for daemon, task in started:
        daemon.stop()
        assert await asyncio.wait_for(task, 20) == 0
    Device.pin_factory.close()
    Device.pin_factory = None


async def test_a_room_with_a_pin(numeric_janus, daemon_in, engines, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every level: the PIN reaches none
    refused = await daemon_in("5001")  # no PIN configured
    await until(lambda: refused.call.state is CallState.IDLE and refused.call.detail, "the refusal")
    line = "refused: room '5001' has a PIN and refused no PIN (janus error 429: Missing mandatory element (pin))"
    assert refused.screen.detail == line
    assert refused.status_line() == f"Idle: 5001 ({line})"
    wrong = await daemon_in("5001", pin="1")
    await until(lambda: wrong.call.state is CallState.IDLE and wrong.call.detail, "the refusal")
    line = "refused: room '5001' has a PIN and refused the PIN it was given (janus error 433: Unauthorized (wrong pin))"
    assert wrong.screen.detail == line
    assert wrong.status_line() == f"Idle: 5001 ({line})"

    remote, rec = engines(profile_for(numeric_janus))
    assert await remote.login_room("5001", User("remote"), RoomConfig(pin=PIN)) is ErrorCode.SUCCESS
    await remote.start_publishing_stream("remote-main", video=TestPatternSource(EncoderSettings(320, 180, 15)))
    admitted = await daemon_in("5001", pin=PIN)
    await until(lambda: admitted.engine.player_state("remote-main") is PlayerState.PLAYING, "the remote played")
    await until(lambda: admitted.screen.picture_rect("remote-main") is not None, "the remote on screen")
    await rec.wait_for(lambda: any(s.stream_id == "room-pi-main" for s in remote.streams), what="the appliance's stream")
    assert admitted.status_line() == "In call: 5001, 2 participants"
    assert PIN not in caplog.text and len(caplog.records) > 50, "the PIN is never logged"


async def test_a_room_that_requires_private_ids(numeric_janus, daemon_in, engines):
    remote, _ = engines(profile_for(numeric_janus))
    await remote.login_room("5002", User("remote"))
    await remote.start_publishing_stream("remote-main", video=TestPatternSource(EncoderSettings(320, 180, 15)))
    daemon = await daemon_in("5002")
    await until(lambda: daemon.screen.picture_rect("remote-main") is not None, "the remote on screen")
    assert daemon.engine.player_state("remote-main") is PlayerState.PLAYING


async def test_a_room_whose_codecs_lack_h264(daemon_in):
    daemon = await daemon_in("5003")
    line = "room '5003' does not take H.264 video (its codecs: vp8)"
    await until(lambda: daemon.call.media_problem == line, "the publisher's refusal")  # after "starting"
    assert daemon.call.media_problem == line
    assert daemon.status_line() == f"In call: 5003, 1 participants; no media: {line}"
    assert daemon.screen.detail == f"no media: {line}"
    await asyncio.sleep(3)
    assert daemon.call.media_problem == line and daemon.call.state is CallState.IN_CALL, "no loop, no crash"


async def test_a_full_room(numeric_janus, daemon_in, engines):
    remote, rec = engines(profile_for(numeric_janus))
    await remote.login_room("5004", User("remote"))
    await remote.start_publishing_stream("remote-main", audio=ToneSource(440))
    await rec.wait_for(lambda: remote.publisher_state("remote-main") is PublisherState.PUBLISHING, what="published")
    daemon = await daemon_in("5004")
    await until(lambda: daemon.call.media_problem.startswith("room full"), "the refusal")
    line = "room full: room '5004' takes no more publishers; retrying"
    assert daemon.call.media_problem == line
    assert daemon.status_line() == f"In call: 5004, 2 participants; no media: {line}"
    assert daemon.screen.detail == f"no media: {line}"
    await remote.stop_publishing_stream("remote-main")  # a place comes free: the retry takes it
    await until(lambda: daemon.call.media_problem == "", "published once there is room", timeout=20)


async def test_an_unknown_room_ids_setting_is_refused_in_one_line(numeric_janus, engines):
    engine, rec = engines(profile_for(numeric_janus, room_ids="numeric"))
    assert await engine.login_room("42", User("pi")) is ErrorCode.INVALID_PARAMETER
    assert rec.of("room_state_update")[-1][3]["detail"] == "room_ids must be 'auto', 'string' or 'number', not 'numeric'"
