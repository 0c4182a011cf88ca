"""Content share from a visitor's laptop: the room's web page (appliance/testing/web)
in Debian's Chromium presses "Share screen", and the appliance shows the share
large, its text as sharp as the source, the cameras in a strip.

The capture is real display capture, of the page's own tab: headless Chromium
has no screen and no picker, so ``--auto-accept-this-tab-capture`` stands in for
the visitor's choice, and the test adds ``preferCurrentTab`` to the page's own
``getDisplayMedia`` call (the choice "this tab" in the picker). With
``--use-fake-ui-for-media-stream`` Chromium would hand out its fake screen
instead (a synthetic pattern with no text), so camera and microphone
permissions are granted to the page the ordinary way.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from PIL import Image
from playwright.async_api import Page

from appliance.app.call import CallState
from appliance.engine import User
from appliance.media import EncoderSettings
from appliance.screen.layout import Rect
from appliance.testing import TestPatternSource
from appliance.testing.webclient import CHROMIUM_FLAGS, WebClientServer

from .conftest import chromium, profile_for
from .daemonkit import running_daemon, until, write_config

SHARE_FLAGS = [f for f in CHROMIUM_FLAGS if f != "--use-fake-ui-for-media-stream"] + ["--auto-accept-this-tab-capture"]
PREFER_THIS_TAB = """(() => {
  const devices = navigator.mediaDevices;
  const pick = devices.getDisplayMedia.bind(devices);
  devices.getDisplayMedia = (options) => pick(Object.assign({}, options, { preferCurrentTab: true }));
})();"""
# What the visitor shares: a slide with one line of text on it, over the page (clicks go through).
SLIDE = """(args) => {
  const slide = document.createElement("div");
  slide.id = "slide";
  slide.style.cssText = `position: fixed; inset: 0; z-index: 10; pointer-events: none; background: ${args.background};`;
  const line = document.createElement("div");
  line.id = "line";
  line.textContent = args.text;
  line.style.cssText = "position: absolute; left: 160px; top: 300px; font: 36px sans-serif; color: #000;";
  slide.appendChild(line);
  document.body.appendChild(slide);
  const box = line.getBoundingClientRect();
  return [Math.floor(box.left), Math.floor(box.top), Math.ceil(box.width), Math.ceil(box.height)];
}"""


@pytest.fixture(scope="module")
def web() -> AsyncIterator[WebClientServer]:
    with WebClientServer() as server:
        yield server


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Chromium as for the other browser tests, but with real tab capture."""
    async with chromium(SHARE_FLAGS) as launched:
        yield launched


async def visitor(browser: Any, web: WebClientServer, janus_url: str, room: str, user: str, name: str) -> Page:
    context = await browser.new_context(permissions=["camera", "microphone"], viewport={"width": 1280, "height": 720})
    await context.add_init_script(PREFER_THIS_TAB)
    page = await context.new_page()
    await page.goto(web.url + "?" + urlencode({"server": janus_url, "room": room, "user": user, "name": name}))
    await page.click("#join")
    await page.wait_for_function("() => document.querySelector('#message').textContent.startsWith('In room')",
                                 timeout=20000)
    return page


async def share_slide(page: Page, text: str, background: str) -> tuple[np.ndarray, Rect]:
    """Puts a slide on the page, shares the tab; returns the slide as the page
    renders it (RGB) and where its line of text is."""
    box = Rect(*await page.evaluate(SLIDE, {"text": text, "background": background}))
    source = np.asarray(Image.open(io.BytesIO(await page.screenshot())).convert("RGB"))
    await page.click("#share")
    await page.wait_for_function("() => document.querySelector('#share').textContent === 'Stop sharing'", timeout=20000)
    return source, box


def rgb(image: np.ndarray) -> np.ndarray:
    """The screen (bgra) as RGB."""
    return image[..., 2::-1]


def ink(image: np.ndarray) -> np.ndarray:
    """Where the text is: dark pixels."""
    return image.astype(np.int32).sum(axis=2) < 3 * 128


def text_overlap(screen: np.ndarray, picture: Rect | None, source: np.ndarray, box: Rect) -> float:
    """How well the text on the screen covers the text the page drew: the
    intersection over union of their ink in the line's box (with a margin);
    0 unless the picture is the source's size. A blank or blurred line, or
    one moved by a pixel or two, scores far lower than the same line."""
    if picture is None or (picture.w, picture.h) != (source.shape[1], source.shape[0]):
        return 0.0
    margin = 8
    rows = slice(box.y - margin, box.y + box.h + margin)
    columns = slice(box.x - margin, box.x + box.w + margin)
    shown, drawn = ink(rgb(screen[picture.slices])[rows, columns]), ink(source[rows, columns])
    return float((shown & drawn).sum() / max(1, (shown | drawn).sum()))


def whitish(image: np.ndarray, rect: Rect) -> float:
    part = rgb(image[rect.slices]).astype(np.int32)
    return float((part.min(axis=2) > 200).mean())


@pytest.fixture
async def appliance(janus, tmp_path, room_id) -> AsyncIterator[Any]:
    async with running_daemon(write_config(tmp_path, janus.url, room_id, screen=(1920, 1080, 15))) as daemon:
        daemon.call.join()
        await until(lambda: daemon.call.state is CallState.IN_CALL, "in call")
        yield daemon


async def test_a_laptop_shares_its_screen_to_the_room(janus, web, browser, appliance, room_id):
    daemon, screen = appliance, appliance.screen
    alice = await visitor(browser, web, janus.url, room_id, "alice", "Alice")
    await until(lambda: screen.picture_rect("alice-web") is not None, "alice's camera on the screen")
    assert screen.tile_rect("alice-web") == screen.tile_area, "one camera fills the screen"

    # Alice shares: large, at its own size (1280 px wide), its text as the page drew it.
    source, box = await share_slide(alice, "Quarterly figures: 4815162342 units shipped", "#ffffff")
    await until(lambda: screen.picture_rect("alice-share") is not None, "alice's share on the screen")
    assert screen.sharing == "Alice"
    share_rect = screen.tile_rect("alice-share")
    assert share_rect.w == 1920 and share_rect.h >= 0.75 * screen.tile_area.h, "the share takes most of the screen"
    picture = screen.picture_rect("alice-share")
    assert (picture.w, picture.h) == (1280, 720), "no downscale: the share fits at its own size"

    def readable() -> bool:
        return text_overlap(screen.last_image.copy(), screen.picture_rect("alice-share"), source, box) >= 0.9

    await until(readable, "the share's line of text, pixel for pixel, on the appliance's screen")
    shown_ink = ink(rgb(screen.last_image[picture.slices])[box.slices]).sum()
    assert shown_ink > 0.05 * box.w * box.h, "there is text in the box"
    camera = screen.tile_rect("alice-web")
    assert camera.y >= share_rect.y + share_rect.h and camera.h < share_rect.h / 3, "the camera in the strip below"
    assert whitish(screen.last_image, screen.picture_rect("alice-web")) < 0.5, "the camera's picture, not the slide"
    label = screen.share_label("Alice")
    assert _found(screen.last_image[share_rect.slices], label), "the screen says who is sharing"

    # Bob shares too: the newer share wins; Alice's goes to the strip.
    bob = await visitor(browser, web, janus.url, room_id, "bob", "Bob")
    await share_slide(bob, "Bob's slide", "#2040c0")
    await until(lambda: screen.sharing == "Bob" and screen.picture_rect("bob-share") is not None, "bob's share large")
    assert screen.tile_rect("bob-share") == share_rect
    assert screen.tile_rect("alice-share").y >= share_rect.y + share_rect.h, "alice's share in the strip"
    await until(lambda: _bluish(screen.last_image, screen.picture_rect("bob-share")) > 0.8, "bob's slide shown large")
    assert _found(screen.last_image[share_rect.slices], screen.share_label("Bob"))

    # Bob stops: Alice's share is large again. Alice stops: the grid is back within 1 s.
    await bob.click("#share")
    await until(lambda: screen.sharing == "Alice", "alice's share large again", timeout=5)
    await until(readable, "alice's text large again", timeout=5)
    pressed = time.monotonic()
    await alice.click("#share")
    await until(lambda: screen.sharing is None and screen.tile_rect("alice-share") is None
                and len(screen.visible_streams()) == 2 and whitish(screen.last_image, share_rect) < 0.2,
                "the grid of two cameras back on the screen", timeout=5)
    took = time.monotonic() - pressed
    assert took <= 1.0, f"the layout came back {took:.2f} s after the share stopped"
    assert {screen.tile_rect("alice-web").h, screen.tile_rect("bob-web").h} == {screen.tile_area.h}, "side by side"
    assert daemon.call.state is CallState.IN_CALL


def _bluish(image: np.ndarray, rect: Rect) -> float:
    part = rgb(image[rect.slices]).astype(np.int32)
    return float(((part[..., 2] > 150) & (part[..., 0] < 80)).mean())


def _found(area: np.ndarray, label: np.ndarray) -> bool:
    """Whether ``label`` (drawn by the compositor) is on ``area``, pixel for pixel, near its top left."""
    h, w = label.shape[:2]
    return any(np.array_equal(area[y : y + h, x : x + w], label) for y in range(0, 40) for x in range(0, 40))


async def test_a_share_from_another_client_that_follows_the_naming_is_shown_as_one(appliance, janus, room_id,
                                                                                    engines):
    """Not the page: an engine (any client) publishing "<something>-share" beside its camera."""
    screen = appliance.screen
    carol, _ = engines(profile_for(janus))
    await carol.login_room(room_id, User("carol", "Carol"))
    camera, slides = TestPatternSource(EncoderSettings(320, 180, 15)), TestPatternSource(EncoderSettings(1280, 720, 5))
    await carol.start_publishing_stream("carol-cam", video=camera)
    await carol.start_publishing_stream("carol-share", video=slides)
    await until(lambda: screen.sharing == "Carol" and screen.picture_rect("carol-share") is not None, "carol's share")
    assert screen.picture_rect("carol-share") == Rect(320, 54, 1280, 720), "large, at its own size"
    assert screen.tile_rect("carol-cam").y >= screen.tile_rect("carol-share").h, "her camera in the strip"
    await carol.stop_publishing_stream("carol-share")
    await until(lambda: screen.sharing is None and screen.tile_rect("carol-cam") == screen.tile_area, "the grid back")
    await carol.destroy()
    camera.close()
    slides.close()
