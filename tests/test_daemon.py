"""The appliance in-process: gpiozero mock pins, a real Janus, a remote participant."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys

import av
import numpy as np
import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from appliance.app import logs
from appliance.app.call import CallState
from appliance.app.config import load_config
from appliance.app.daemon import Daemon
from appliance.engine import PlayerState, UpdateType, User
from appliance.engine.states import PublisherState, RoomState
from appliance.media import EncoderSettings
from appliance.media.pcm import rms as samples_rms
from appliance.testing import TestPatternSource, ToneSource
from appliance.testing.tone import frame_samples

from .conftest import profile_for
from .daemonkit import LoopLag, write_config

JOIN, HANGUP, MUTE, IN_CALL_LED, MUTED_LED = 17, 27, 22, 23, 24


@pytest.fixture
def pins():
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = None


def press(pins, number: int) -> None:
    pin = pins.pin(number)
    pin.drive_low()  # pulled-up button: pressed pulls the pin low
    pin.drive_high()


@pytest.fixture
async def appliance(janus, room_id, tmp_path, pins):
    path = write_config(tmp_path, janus.url, room_id)
    daemon = Daemon(load_config(path), path)
    task = asyncio.create_task(daemon.run())
    for _ in range(100):
        if hasattr(daemon, "control"):
            break
        await asyncio.sleep(0.05)
    yield daemon
    daemon.stop()
    assert await asyncio.wait_for(task, 20) == 0


async def remote_participant(engines, janus, room_id):
    remote, rec = engines(profile_for(janus))
    await remote.login_room(room_id, User("remote", "Remote"))
    await remote.start_publishing_stream("remote-main", video=TestPatternSource(EncoderSettings(320, 180, fps=15)),
                                         audio=ToneSource(660))
    video: list[av.VideoFrame] = []
    audio: list[av.AudioFrame] = []

    async def play(room: str, update: UpdateType, streams: list) -> None:
        for stream in streams:
            if stream.stream_id == "room-pi-main" and update is UpdateType.ADD:
                await remote.start_playing_stream("room-pi-main", video.append, audio.append)
            elif stream.stream_id == "room-pi-main":
                await remote.stop_playing_stream("room-pi-main")

    remote.on("room_stream_update", play)
    return remote, rec, video, audio


def rms(frames: list[av.AudioFrame]) -> float:
    return samples_rms(np.concatenate([frame_samples(f) for f in frames]))


async def test_buttons_join_mute_hangup_with_media_both_ways(appliance, janus, room_id, engines, pins):
    remote, rec, video, audio = await remote_participant(engines, janus, room_id)
    call = appliance.call
    assert call.state is CallState.IDLE and pins.pin(IN_CALL_LED).state == 0

    press(pins, JOIN)
    await rec.wait_for(lambda: call.state is CallState.IN_CALL, what="in call")
    await rec.wait_for(lambda: len(video) >= 15 and len(audio) >= 50, what="the room's media at the remote")
    assert pins.pin(IN_CALL_LED).state == 1
    screen = appliance.screen
    await rec.wait_for(lambda: screen.picture_rect("remote-main") is not None, what="the remote on the room's screen")
    assert appliance.engine.player_state("remote-main") is PlayerState.PLAYING
    assert rms(audio[-25:]) > 0.05, "the room's microphone is heard"

    press(pins, MUTE)
    await rec.wait_for(lambda: pins.pin(MUTED_LED).state == 1, what="muted LED")
    assert call.muted
    count = len(audio)
    await rec.wait_for(lambda: len(audio) >= count + 50, what="audio while muted")
    assert rms(audio[-25:]) < 0.001, "muted: the others hear silence"
    press(pins, MUTE)
    await rec.wait_for(lambda: pins.pin(MUTED_LED).state == 0, what="muted LED off")

    press(pins, HANGUP)
    await rec.wait_for(lambda: call.state is CallState.IDLE, what="idle")
    await rec.wait_for(lambda: not any(s.stream_id == "room-pi-main" for s in remote.streams), what="stream gone")
    assert appliance.engine.room_state is RoomState.DISCONNECTED and pins.pin(IN_CALL_LED).state == 0
    press(pins, HANGUP)  # hang-up while idle does nothing
    await asyncio.sleep(0.2)
    assert call.state is CallState.IDLE


async def test_a_storm_of_presses_ends_consistent(appliance, janus, room_id, engines, pins):
    remote, rec, video, audio = await remote_participant(engines, janus, room_id)
    rng = random.Random(7)
    for _ in range(100):
        press(pins, rng.choice([JOIN, JOIN, HANGUP, MUTE]))
        await asyncio.sleep(rng.uniform(0, 0.03))
    call, engine = appliance.call, appliance.engine
    await rec.wait_for(lambda: call.state in (CallState.IDLE, CallState.IN_CALL), timeout=20, what="settled")
    await asyncio.sleep(1.0)
    if call.state is CallState.IN_CALL:
        await rec.wait_for(lambda: engine.publisher_state(call.stream_id) is PublisherState.PUBLISHING, what="publishing")
        assert engine.room_state is RoomState.CONNECTED and pins.pin(IN_CALL_LED).state == 1
    else:
        assert engine.room_state is RoomState.DISCONNECTED and pins.pin(IN_CALL_LED).state == 0
    assert pins.pin(MUTED_LED).state == int(call.muted) and appliance.microphone.muted == call.muted
    # And it still works: one more join gets into the call.
    press(pins, JOIN)
    await rec.wait_for(lambda: call.state is CallState.IN_CALL, what="in call after the storm")


async def test_long_press_hangs_up_and_keeps_auto_join_off(janus, room_id, tmp_path, pins, engines):
    path = write_config(tmp_path, janus.url, room_id, auto_join=True)
    path.write_text(path.read_text() + "[buttons]\nlong_press = 0.2\n")
    daemon = Daemon(load_config(path), path)
    task = asyncio.create_task(daemon.run())
    _, rec = engines(profile_for(janus))  # its recorder polls the daemon state
    try:
        await rec.wait_for(lambda: hasattr(daemon, "call") and daemon.call.state is CallState.IN_CALL, what="auto-joined")
        pin = pins.pin(HANGUP)
        pin.drive_low()
        await asyncio.sleep(0.5)  # held past long_press
        pin.drive_high()
        await rec.wait_for(lambda: daemon.call.state is CallState.IDLE, what="hung up")
        assert not daemon.auto_join_enabled
        path.write_text(path.read_text().replace('user_name = "Room Pi"', 'user_name = "Room Pi 2"'))
        await daemon.reload()  # a rejoin-worthy change with auto_join = true, but the long press said no
        await asyncio.sleep(0.5)
        assert daemon.call.state is CallState.IDLE
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 20) == 0


async def test_hangup_clears_every_stream_not_only_the_nine_on_screen(janus, room_id, engines):
    from appliance.app.call import Call, Media
    from appliance.screen.compositor import Compositor

    remote, _ = engines(profile_for(janus))
    await remote.login_room(room_id, User("remote"))
    for n in range(11):
        await remote.start_publishing_stream(f"r{n}", audio=ToneSource(300 + n))
    engine, rec = engines(profile_for(janus))
    screen = Compositor(640, 360, "bgra")
    call = Call(engine, room_id, User("room-pi"), None, Media(None, None, screen, None))
    call.join()
    await rec.wait_for(lambda: len(engine.streams) == 11 and len(screen.visible_streams()) == 9, what="11 streams")
    await call.hangup()
    for n in range(1, 11):
        await remote.stop_publishing_stream(f"r{n}")
    call.join()
    await rec.wait_for(lambda: call.state is CallState.IN_CALL and [s.stream_id for s in engine.streams] == ["r0"],
                       what="back in with one stream")
    await rec.wait_for(lambda: "r0" in screen.visible_streams(), what="r0 shown")
    assert screen.visible_streams() == ["r0"], "no stale tiles from the last call"
    await call.close()


async def test_reload_to_a_new_room_rejoins_with_media(appliance, janus, room_id, tmp_path, engines):
    """The daemon owns its camera and microphone: an engine torn down for a
    reload must not close them, or the new room gets a call without media."""
    call = appliance.call
    call.join()
    await asyncio.wait_for(_until(lambda: call.state is CallState.IN_CALL), 15)
    new_room = f"{room_id}-new"
    remote, rec, video, audio = await remote_participant(engines, janus, new_room)
    write_config(tmp_path, janus.url, new_room)
    reloaded = asyncio.get_running_loop().time()
    await appliance.reload()
    await rec.wait_for(lambda: len(video) >= 20 and len(audio) >= 50, timeout=5,
                       what="20 frames of the appliance in the new room within 5 s of the reload")
    print(f"20 frames in the new room {asyncio.get_running_loop().time() - reloaded:.2f} s after the reload")
    assert appliance.call.room_id == new_room and not appliance.camera.closed
    assert logs.current_room == [new_room], "journald's ROOM= follows the room"


async def test_the_loop_stays_responsive_while_hanging_up_eleven_streams(appliance, janus, room_id):
    # The eleven remotes publish from a process of their own, as the world's do:
    # only the appliance's own work competes with the loop for the interpreter.
    remotes = subprocess.Popen([sys.executable, "-m", "appliance.testing.publishers", janus.url, room_id, "11", "600",
                                "160", "90", "10"])
    try:
        call, engine = appliance.call, appliance.engine
        call.join()
        streams = [f"remote-{n}-main" for n in range(11)]
        await asyncio.wait_for(_until(lambda: sum(engine.player_state(s) is PlayerState.PLAYING for s in streams) == 11),
                               60)
        # The call's own steady lag first: under emulation handling eleven
        # streams' packets keeps the loop 50-70 ms behind (natively a few ms).
        async with LoopLag() as steady:
            await asyncio.sleep(2.0)
        async with LoopLag() as lag:
            await call.hangup()
            await asyncio.sleep(1.5)  # and the garbage collection that follows
    finally:
        remotes.kill()
        remotes.wait()
    print(f"worst loop lag while hanging up 11 streams: {lag.worst * 1000:.1f} ms over {lag.ticks} ticks, "
          f"in the call before it {steady.worst * 1000:.1f} ms")
    assert call.state is CallState.IDLE and lag.ticks > 10, "the ticker ran throughout"
    assert lag.worst <= steady.worst + 0.1, "hanging up stalls the loop no more than 100 ms beyond the call's own lag"


async def test_the_loop_stays_responsive_under_fifty_screenshots(janus, room_id, tmp_path, pins):
    path = write_config(tmp_path, janus.url, room_id, screen=(1920, 1080, 10))
    daemon = Daemon(load_config(path), path)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(_until(lambda: hasattr(daemon, "control")), 10)
    try:
        daemon.call.join()
        await asyncio.wait_for(_until(lambda: daemon.call.state is CallState.IN_CALL), 15)
        await asyncio.sleep(0.5)
        # The 50 clients run in a process of their own, as an admin's would:
        # only the daemon's work competes with the loop for the interpreter.
        async with LoopLag() as lag:
            clients = await asyncio.create_subprocess_exec(
                sys.executable, "-c", SCREENSHOT_CLIENTS, str(tmp_path / "control.sock"), "50",
                stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(clients.communicate(), 120)
        print(f"worst loop lag under 50 screenshots: {lag.worst * 1000:.1f} ms")
        assert out.split() == [b"PNG"] * 50, "every client got a PNG"
        assert lag.worst <= 0.1
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 20) == 0


SCREENSHOT_CLIENTS = """
import base64, json, socket, sys
from concurrent.futures import ThreadPoolExecutor

def request(path):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(60)
        sock.connect(path)
        sock.sendall(b'{"command": "screenshot"}\\n')
        data = b""
        while not data.endswith(b"\\n"):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    png = base64.b64decode(json.loads(data)["png"])
    return "PNG" if png.startswith(b"\\x89PNG") else "not a PNG"

with ThreadPoolExecutor(int(sys.argv[2])) as pool:
    print("\\n".join(pool.map(request, [sys.argv[1]] * int(sys.argv[2]))))
"""


async def _until(predicate) -> None:  # type: ignore[no-untyped-def]
    while not predicate():
        await asyncio.sleep(0.05)


async def test_status_says_no_media_while_the_stream_does_not_flow(appliance, monkeypatch):
    """In call but the media connection fails (as in a sandbox refusing the DTLS
    stack write+execute memory): STATUS= must not just say "In call"."""
    from aiortc.rtcdtlstransport import RTCDtlsTransport

    real_start = RTCDtlsTransport.start

    async def refused(self, remote_parameters):  # type: ignore[no-untyped-def]
        raise MemoryError("Cannot allocate write+execute memory for ffi.callback()")

    monkeypatch.setattr(RTCDtlsTransport, "start", refused)
    appliance.call.join()
    await asyncio.wait_for(_until(lambda: "no media: " in appliance.status_line()
                                  and "MemoryError" in appliance.status_line()), 15)
    assert appliance.status_line().startswith("In call: ") and appliance.status()["media_problem"]
    monkeypatch.setattr(RTCDtlsTransport, "start", real_start)
    await asyncio.wait_for(_until(lambda: "no media" not in appliance.status_line()), 20)


async def test_a_reload_applies_the_volume_even_beside_a_change_that_waits_for_a_restart(janus, room_id, tmp_path,
                                                                                          pins):
    path = write_config(tmp_path, janus.url, room_id)
    path.write_text(path.read_text().replace("[speaker]\nenabled = false\n",
                                             '[speaker]\nenabled = true\ndevice = "null"\n'))
    daemon = Daemon(load_config(path), path)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(_until(lambda: hasattr(daemon, "control")), 10)
    try:
        assert daemon.speaker is not None and daemon.speaker.volume == 1.0
        path.write_text(path.read_text().replace('device = "null"\n', 'device = "default"\nvolume = 0.5\n'))
        await daemon.reload()
        assert daemon.last_reload == {"ok": True, "restart_needed": ["speaker"]}
        assert daemon.speaker.volume == 0.5 and daemon.config.speaker.volume == 0.5
        assert daemon.config.speaker.device == "null", "the device waits for a restart"
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 20) == 0
