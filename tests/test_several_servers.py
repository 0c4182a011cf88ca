"""Several Janus servers (``server.urls``): every participant of a room meets on
one, chosen by rendezvous hashing of the room id, and they move together when
it dies. The appliance (the daemon), an engine participant and the web page
in Chromium; then a fourth participant once the first server is back."""

from __future__ import annotations

import random
import string
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import av
import pytest

from appliance.app.call import CallState
from appliance.engine import EngineProfile, PlayerState, RoomConfig, User
from appliance.engine.servers import server_order
from appliance.media import EncoderSettings
from appliance.testing import TestPatternSource, ToneSource
from appliance.testing.janus_server import LocalJanus
from appliance.testing.webclient import WebClientServer

from .daemonkit import running_daemon, until, write_config

MOVE_BOUND = 5.0  # seconds from the server's death to all three meeting again, media flowing

ROOM_CHARACTERS = string.ascii_letters + string.digits + "~!@#$%^&*()_+=-`;',.<>\\"


@pytest.fixture
def web() -> Iterator[WebClientServer]:
    with WebClientServer() as server:
        yield server


async def test_the_page_orders_servers_as_the_engine_does(web, browser):
    page = await browser.new_page()
    await page.goto(web.url)
    rng = random.Random(20261123)
    cases = []
    for _ in range(1000):
        room = "".join(rng.choice(ROOM_CHARACTERS) for _ in range(rng.randint(1, 128)))
        urls = [f"ws://janus-{rng.randrange(100)}.example:{rng.randint(1, 65535)}/" for _ in range(rng.randint(2, 8))]
        cases.append((room, urls))
    ordered = await page.evaluate("(cases) => cases.map(([room, urls]) => serverOrder(room, urls))", cases)
    assert ordered == [server_order(room, urls) for room, urls in cases]
    firsts = {order[0] == urls[0] for (room, urls), order in zip(cases, ordered)}
    assert firsts == {True, False}, "the order depends on the room"


@pytest.fixture
def two_servers() -> Iterator[list[LocalJanus]]:
    servers = [LocalJanus(), LocalJanus()]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.close()


PAGE_PLAYS = """(name) => {
  const tile = [...document.querySelectorAll('.tile')].find((t) => t.querySelector('span').textContent === name);
  if (!tile) return false;
  const video = tile.querySelector('video'), audio = tile.querySelector('audio');
  return video.videoWidth > 0 && video.currentTime > 0.3 && audio.srcObject !== null && audio.currentTime > 0.3;
}"""


async def test_a_room_moves_to_the_next_server_together_and_does_not_split(two_servers, web, browser, room_id,
                                                                          engines, tmp_path):
    urls = tuple(server.url for server in two_servers)
    first, second = (next(s for s in two_servers if s.url == url) for url in server_order(room_id, urls))
    profile = EngineProfile(server=urls, reconnect_max_delay=1.0, request_timeout=5.0)

    # The appliance: urls instead of url.
    path = write_config(tmp_path, urls[0], room_id)
    path.write_text(path.read_text().replace(f'url = "{urls[0]}"', f"urls = {list(urls)!r}".replace("'", '"')))
    async with running_daemon(path) as daemon:
        daemon.call.join()

        # An engine participant, publishing.
        bob, rec = engines(profile)
        await bob.login_room(room_id, User("bob", "Bob"), RoomConfig(is_user_status_notify=True))
        await bob.start_publishing_stream("bob-main", video=TestPatternSource(EncoderSettings(320, 180, 15)),
                                          audio=ToneSource(550))
        bob_frames: list[av.VideoFrame] = []

        # The web page, given both servers in another order than the engine's.
        page = await browser.new_page()
        await page.goto(web.url + "?" + urlencode({"server": f"{urls[1]} {urls[0]}", "room": room_id,
                                                   "user": "alice", "name": "Alice"}))
        await page.click("#join")

        async def all_meet_on(server: LocalJanus) -> None:
            await until(lambda: daemon.call.state is CallState.IN_CALL and daemon.engine.server == server.url
                        and bob.server == server.url, f"the appliance and bob on {server.url}")
            await until(lambda: page.evaluate("() => state.server"), "the page on a server")
            assert await page.evaluate("() => state.server") == server.url
            # Media both ways, for each pair.
            await until(lambda: {"bob-main", "alice-web"} <= {s.stream_id for s in daemon.engine.streams}
                        and all(daemon.screen.picture_rect(s) is not None for s in ("bob-main", "alice-web")),
                        "bob's and alice's pictures on the appliance's screen")
            await until(lambda: page.evaluate(PAGE_PLAYS, "Room Pi"), "the appliance playing in the page")
            await until(lambda: page.evaluate(PAGE_PLAYS, "Bob"), "bob playing in the page")
            await until(lambda: "room-pi-main" in {s.stream_id for s in bob.streams}, "the appliance's stream at bob")
            await bob.stop_playing_stream("room-pi-main")
            bob_frames.clear()
            await bob.start_playing_stream("room-pi-main", video_sink=bob_frames.append)
            await until(lambda: len(bob_frames) >= 5, "the appliance's frames at bob")
            assert bob.player_state("room-pi-main") is PlayerState.PLAYING

        await all_meet_on(first)

        # Its server dies: all three meet on the next one, media flowing, within the bound.
        first.kill()
        killed = time.monotonic()
        await all_meet_on(second)
        took = time.monotonic() - killed
        print(f"moved to the next server with media both ways in {took:.2f} s")
        assert took <= MOVE_BOUND, f"the room took {took:.2f} s to meet again on the next server"

        # The first server comes back; someone joining later finds them where they are.
        first.start()
        carol, rec_carol = engines(profile)
        await carol.login_room(room_id, User("carol", "Carol"), RoomConfig(is_user_status_notify=True))
        assert carol.server == second.url, "no split: the room stays where its participants are"
        await rec_carol.wait_for(lambda: {"room-pi-main", "bob-main", "alice-web"} <= {s.stream_id for s in carol.streams},
                                 what="everyone's streams at carol")
        await until(lambda: "carol" in {u.user_id for u in daemon.engine.users}, "carol at the appliance")
        assert daemon.engine.server == bob.server == second.url
        assert await page.evaluate("() => state.server") == second.url
