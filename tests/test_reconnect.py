"""Janus stopped and started again mid-call: both sides come back by themselves."""

from __future__ import annotations

import asyncio
import time

from appliance.engine import PlayerState, PublisherState, RoomState, RoomStateReason, User
from appliance.media import EncoderSettings
from appliance.testing import TestPatternSource, ToneSource

from .conftest import Recorder, profile_for


def order(recorder: Recorder, stream_event: str, stream_id: str) -> list[str]:
    """The room's and the stream's state changes as short words, in order."""
    words = []
    for event, args in recorder.events:
        if event == "room_state_update":
            words.append(f"room:{args[3]['reason'].name}")
        elif event == stream_event and args[0] == stream_id:
            words.append(f"stream:{args[1].name}")
    return words


async def test_janus_restart_mid_call(own_janus, room_id, engines):
    a, rec_a = engines(profile_for(own_janus))
    b, rec_b = engines(profile_for(own_janus))
    source = TestPatternSource(EncoderSettings(width=640, height=360))
    frames: list[float] = []
    await a.login_room(room_id, User("alice"))
    await a.start_publishing_stream("alice-cam", video=source, audio=ToneSource())
    await b.login_room(room_id, User("bob"))
    await b.start_playing_stream("alice-cam", video_sink=lambda f: frames.append(time.monotonic()))
    await rec_b.wait_for(lambda: len(frames) > 10, what="media before the restart")

    for cycle in range(2):
        await asyncio.to_thread(own_janus.stop)
        await rec_a.wait_for(lambda: a.room_state is RoomState.CONNECTING, what="A reconnecting")
        await rec_b.wait_for(lambda: b.player_state("alice-cam") is PlayerState.REQUESTING, what="B requesting")
        await asyncio.sleep(1.0)  # the server stays away for a while
        await asyncio.to_thread(own_janus.start)
        back = time.monotonic()
        await rec_a.wait_for(lambda: a.publisher_state("alice-cam") is PublisherState.PUBLISHING, what="A publishing again")
        await rec_b.wait_for(lambda: b.player_state("alice-cam") is PlayerState.PLAYING, what="B playing again")
        await rec_b.wait_for(lambda: bool(frames) and frames[-1] > back, what="frames after the restart")
        print(f"cycle {cycle}: janus back -> media flowing in {(frames[-1] - back) * 1000:.0f} ms")

    expected_a = ["room:LOGGING_IN", "room:LOGGED_IN", "stream:REQUESTING", "stream:PUBLISHING"]
    expected_b = ["room:LOGGING_IN", "room:LOGGED_IN", "stream:REQUESTING", "stream:PLAYING"]
    again = ["room:RECONNECTING", "stream:REQUESTING", "room:RECONNECTED", "stream:{}"]
    assert order(rec_a, "publisher_state_update", "alice-cam") == expected_a + [
        w.format("PUBLISHING") for w in again * 2
    ]
    # B may see alice's stream come back a moment after its own reconnect,
    # which changes nothing in the order of state changes.
    assert order(rec_b, "player_state_update", "alice-cam") == expected_b + [w.format("PLAYING") for w in again * 2]
    reconnecting = [args for args in rec_a.of("room_state_update") if args[3]["reason"] is RoomStateReason.RECONNECTING]
    assert all(args[1] is RoomState.CONNECTING for args in reconnecting)
