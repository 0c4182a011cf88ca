"""A browser participant (the page in appliance/testing/web) in Debian's Chromium, headless,
in the same private network namespace as Janus and the engines."""

from __future__ import annotations

from urllib.parse import urlencode

import av
import pytest
from playwright.async_api import Browser, Page

from appliance.engine import PlayerState, RoomConfig, UpdateType, User
from appliance.engine.tokens import mint_token
from appliance.media import EncoderSettings
from appliance.testing import TestPatternSource, ToneSource
from appliance.testing.janus_server import LocalJanus, free_port
from appliance.testing.webclient import WebClientServer

from .conftest import Recorder, profile_for


@pytest.fixture(scope="module")
def web() -> WebClientServer:
    with WebClientServer() as server:
        yield server


async def open_page(browser: Browser, web: WebClientServer, **params: str) -> Page:
    page = await browser.new_page()
    await page.goto(web.url + "?" + urlencode(params))
    await page.click("#join")
    return page


async def until(page: Page, script: str, timeout: float = 20.0) -> object:
    """The first truthy value of ``script`` (not a second evaluation, which may see a tile still being set up)."""
    handle = await page.wait_for_function(script, timeout=timeout * 1000)
    return await handle.json_value()


PUBLISHED_CODEC = """async () => {
  const stats = await state.publisher.webrtcStuff.pc.getStats();
  for (const report of stats.values()) {
    if (report.type === "outbound-rtp" && report.kind === "video" && report.codecId) {
      return stats.get(report.codecId).mimeType;
    }
  }
  return null;
}"""


@pytest.mark.parametrize(("room_codecs", "browser_codec"), [("h264,vp8", "video/H264"), ("vp8,h264", "video/VP8")])
async def test_browser_and_appliance_see_and_hear_each_other(janus, web, browser, room_id, engines, room_codecs,
                                                             browser_codec):
    engine, rec = engines(profile_for(janus, room_video_codec=room_codecs))
    await engine.login_room(room_id, User("room-pi", "Room Pi"), RoomConfig(is_user_status_notify=True))
    await engine.start_publishing_stream("room-pi-main", video=TestPatternSource(EncoderSettings()), audio=ToneSource())
    page = await open_page(browser, web, server=janus.url, room=room_id, user="alice", name="Alice")

    # The page decodes the appliance's H.264 at 1280x720 and plays its audio.
    # (A track event may set the element's source again, which resets its size until the next frame.)
    size = await until(page, "() => { const v = document.querySelector('.tile video');"
                             " return v && v.videoWidth && [v.videoWidth, v.videoHeight] }")
    assert size == [1280, 720]
    await until(page, "() => { const a = document.querySelector('.tile audio'); return a && !a.paused && a.currentTime > 0.5 }")
    assert await page.text_content(".tile span") == "Room Pi"

    # The engine sees the browser user and stream arrive, and plays it.
    await rec.wait_for(lambda: any(u.user_id == "alice" for u in engine.users), what="alice ADD")
    await rec.wait_for(lambda: any(s.stream_id == "alice-web" for s in engine.streams), what="alice's stream")
    assert next(s for s in engine.streams if s.stream_id == "alice-web").user.user_name == "Alice"
    frames: list[av.VideoFrame] = []
    await engine.start_playing_stream("alice-web", video_sink=frames.append)
    await rec.wait_for(lambda: len(frames) >= 10, what="the browser's frames")
    assert engine.player_state("alice-web") is PlayerState.PLAYING
    size = await page.evaluate("() => { const t = state.publisher.webrtcStuff.myStream.getVideoTracks()[0].getSettings();"
                               " return [t.width, t.height] }")
    assert {(f.width, f.height) for f in frames[-5:]} == {tuple(size)}, "frames of the fake camera's size"
    assert await page.evaluate(PUBLISHED_CODEC) == browser_codec

    # Hang-up in the page: the engine sees the stream and the user leave.
    await page.click("#hangup")
    await rec.wait_for(lambda: (UpdateType.DELETE, "alice-web") in _stream_events(rec), what="stream DELETE")
    await rec.wait_for(lambda: (UpdateType.DELETE, "alice") in _user_events(rec), what="user DELETE")


async def test_page_says_when_the_token_is_refused(web, browser, room_id):
    with LocalJanus(token_secret="browser-secret") as janus:
        page = await open_page(browser, web, server=janus.url, room=room_id, user="alice",
                               token=mint_token("not-the-secret", 3600))
        await until(page, "() => document.querySelector('#message.error') !== null")
        assert await page.text_content("#message") == "The server refused the token."
        good = await open_page(browser, web, server=janus.url, room=room_id, user="bob",
                               token=mint_token("browser-secret", 3600))
        await until(good, "() => document.querySelector('#message').textContent.startsWith('In room')")


async def test_page_says_when_the_server_is_unreachable(web, browser, room_id):
    url = f"ws://127.0.0.1:{free_port()}/"
    page = await open_page(browser, web, server=url, room=room_id, user="alice")
    await until(page, "() => document.querySelector('#message.error') !== null")
    assert await page.text_content("#message") == f"Cannot reach the server at {url}."


def _stream_events(rec: Recorder) -> list[tuple[UpdateType, str]]:
    return [(args[1], s.stream_id) for args in rec.of("room_stream_update") for s in args[2]]


def _user_events(rec: Recorder) -> list[tuple[UpdateType, str]]:
    return [(args[1], u.user_id) for args in rec.of("room_user_update") for u in args[2]]
