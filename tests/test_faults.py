"""Fault tests: Janus killed mid-call, the network link cut. Bounded in time;
``--long`` runs the long modes. Each prints its recovery figures."""

from __future__ import annotations

import asyncio
import subprocess
import time

import pytest

from appliance.app.call import CallState
from appliance.app.config import load_config
from appliance.app.daemon import Daemon
from appliance.engine import PlayerState, PublisherState, User
from appliance.media import EncoderSettings
from appliance.testing import TestPatternSource, ToneSource
from appliance.testing.janus_server import LocalJanus

from .conftest import profile_for
from .daemonkit import write_config

RECOVERY_S = 5.0


async def test_janus_killed_and_restarted_mid_call(own_janus, room_id, tmp_path, engines, long_mode, monkeypatch):
    """The daemon is back publishing and playing without a restart of its own,
    media both ways within ``RECOVERY_S`` of Janus being back, every cycle."""
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    path = write_config(tmp_path, own_janus.url, room_id, auto_join=True)
    daemon = Daemon(load_config(path), path)
    task = asyncio.create_task(daemon.run())
    remote, rec = engines(profile_for(own_janus))
    seen: list[float] = []  # when the remote received the appliance's frames
    await remote.login_room(room_id, User("remote"))
    await remote.start_publishing_stream("remote-main", video=TestPatternSource(EncoderSettings(320, 180, fps=15)),
                                         audio=ToneSource(660))
    await remote.start_playing_stream("room-pi-main", video_sink=lambda f: seen.append(time.monotonic()))
    try:
        await rec.wait_for(lambda: len(seen) > 10, timeout=30, what="media before the first kill")
        figures = []
        for cycle in range(10 if long_mode else 2):
            own_janus.kill()
            await rec.wait_for(lambda: daemon.call.state is CallState.RECONNECTING, what="the appliance notices")
            await asyncio.sleep(0.5)
            await asyncio.to_thread(own_janus.start)
            back = time.monotonic()
            screen = daemon.screen
            await rec.wait_for(lambda: bool(seen) and seen[-1] > back, timeout=30, what="the appliance's media again")
            await rec.wait_for(lambda: daemon.call.state is CallState.IN_CALL, what="in call again")
            await rec.wait_for(lambda: screen.picture_rect("remote-main") is not None
                               and daemon.engine.player_state("remote-main") is PlayerState.PLAYING,
                               what="the remote on the appliance's screen again")
            sent = min(t for t in seen if t > back) - back
            played = daemon.engine._players["remote-main"].first_frame_time - back
            figures.append(max(sent, played))
        print("janus back -> media flowing both ways (s):", " ".join(f"{f:.2f}" for f in figures))
        assert max(figures) <= RECOVERY_S, f"a cycle took {max(figures):.2f} s"
        assert not task.done(), "the appliance process never restarted itself"
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 20) == 0


@pytest.fixture
def separate_janus():
    """Janus in a network namespace of its own, behind a veth pair w0 <-> w1."""
    subprocess.run(["ip", "link", "add", "w0", "type", "veth", "peer", "name", "w1"], check=True)
    subprocess.run(["ip", "addr", "add", "10.232.0.1/24", "dev", "w0"], check=True)
    subprocess.run(["ip", "link", "set", "w0", "up"], check=True)
    janus = LocalJanus(ice_interfaces=["w1"], ws_ip="10.232.0.2", own_namespace=("w1", "10.232.0.2/24"))
    janus.start()
    yield janus
    janus.close()  # its namespace goes, and the veth pair with it
    subprocess.run(["ip", "link", "del", "w0"], capture_output=True)


def link(up: bool) -> None:
    subprocess.run(["ip", "link", "set", "w0", "up" if up else "down"], check=True)


async def test_link_cut_for_10_s_and_restored(separate_janus, room_id, engines):
    profile = profile_for(separate_janus, ping_interval=2.0, ping_timeout=2.0, ice_interfaces=("w0",))
    a, rec_a = engines(profile)
    b, rec_b = engines(profile)
    frames: list[float] = []
    await a.login_room(room_id, User("alice"))
    await a.start_publishing_stream("cam", video=TestPatternSource(EncoderSettings(320, 180, fps=15)))
    await b.login_room(room_id, User("bob"))
    await b.start_playing_stream("cam", video_sink=lambda f: frames.append(time.monotonic()))
    await rec_b.wait_for(lambda: len(frames) > 10, what="media before the cut")
    link(False)
    try:
        await asyncio.sleep(10)
    finally:
        link(True)
    restored = time.monotonic()
    await rec_a.wait_for(lambda: a.publisher_state("cam") is PublisherState.PUBLISHING and frames[-1] > restored,
                         timeout=30, what="media after the link is back")
    print(f"link restored -> media flowing: {frames[-1] - restored:.2f} s")
    for recorder, event in ((rec_a, "publisher_state_update"), (rec_b, "player_state_update")):
        states = [s.name for s in recorder.states(event, "cam")]
        assert states[:2] == ["REQUESTING", states[1]] and states[1] in ("PUBLISHING", "PLAYING")
        assert "REQUESTING" in states[2:] and states[-1] == states[1], f"{event} walked back through requesting: {states}"
    assert b.player_state("cam") is PlayerState.PLAYING
