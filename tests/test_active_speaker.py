"""The active speaker: levels from the decoded audio of played streams choose
who is on screen beyond nine and who is highlighted; the status line shows the
microphone's level."""

from __future__ import annotations

import numpy as np

from appliance.app.call import CallState
from appliance.engine import User
from appliance.screen.compositor import HIGHLIGHT, LEVEL_BAR, LEVEL_EMPTY, MUTED_TEXT, Compositor, ScreenState
from appliance.screen.pixels import rgb_to, to_rgb
from appliance.testing import ToneSource

from .conftest import profile_for
from .daemonkit import running_daemon, until, write_config


def colour(image: np.ndarray, rect, pixel_format: str = "bgra") -> np.ndarray:  # type: ignore[no-untyped-def]
    return to_rgb(image[rect.slices], pixel_format)


def framed(screen: Compositor, image: np.ndarray, stream_id: str) -> bool:
    """Whether the stream's tile has the highlight all round its edge (pixels)."""
    rect, w = screen.tile_rect(stream_id), screen.highlight_width()
    edges = [image[rect.y : rect.y + w, rect.x : rect.x + rect.w], image[rect.y + rect.h - w : rect.y + rect.h,
             rect.x : rect.x + rect.w], image[rect.y : rect.y + rect.h, rect.x : rect.x + w],
             image[rect.y : rect.y + rect.h, rect.x + rect.w - w : rect.x + rect.w]]
    expected = rgb_to(np.array([[HIGHLIGHT]], np.uint8), "bgra")[0, 0]
    return all((edge == expected).all() for edge in edges)


async def test_of_eleven_remotes_the_two_talking_are_shown_and_the_louder_is_highlighted(janus, room_id, tmp_path,
                                                                                         engines):
    path = write_config(tmp_path, janus.url, room_id, screen=(1280, 720, 15))
    path.write_text(path.read_text().replace("[speaker]\nenabled = false", '[speaker]\ndevice = "null"'))
    remote, rec = engines(profile_for(janus))
    await remote.login_room(room_id, User("remote"))
    # r0 and r1 talk (r0 louder); published first, they are the two a plain "newest nine" would hide.
    await remote.start_publishing_stream("r0", audio=ToneSource(300, level=0.4))
    await remote.start_publishing_stream("r1", audio=ToneSource(500, level=0.1))
    for n in range(2, 11):
        await remote.start_publishing_stream(f"r{n}", audio=ToneSource(300 + n, level=0.0))
    async with running_daemon(path) as daemon:
        daemon.call.join()
        await until(lambda: daemon.call.state is CallState.IN_CALL, "in call")
        screen = daemon.screen
        await until(lambda: len(daemon.engine.streams) == 11, "11 streams")
        await until(lambda: {"r0", "r1"} <= set(screen.visible_streams()) and screen.active_speaker == "r0",
                    "the two talkers on screen, r0 the active speaker")
        assert len(screen.visible_streams()) == 9
        # The screen's own worker composes too: wait for a whole screen with the frame drawn.
        await until(lambda: framed(screen, screen.last_image.copy(), "r0"), "the louder talker's tile framed")
        image = screen.last_image.copy()
        assert not any(framed(screen, image, s) for s in screen.visible_streams() if s != "r0")
        # The levels themselves are checked against a hand-mixed sine (tests/test_metrics.py); under
        # emulation eleven streams are decoded late and the mix has gaps, so only their order is asserted.
        status = daemon.status()
        levels = status["levels"]
        assert status["active_speaker"] == "r0" and levels["r0"] > levels["r1"] > 0.001, levels
        assert max(levels[f"r{n}"] for n in range(2, 11)) < 0.001
        assert status["microphone_level"] is None, "the tone microphone has no level to show"

        # r0 falls silent: r1 is highlighted instead.
        await remote.stop_publishing_stream("r0")
        await until(lambda: screen.active_speaker == "r1", "r1 the active speaker")
        await until(lambda: framed(screen, screen.last_image.copy(), "r1"), "r1's tile framed")


def test_the_microphone_bar_follows_the_level_and_shows_mute():
    screen = Compositor(1280, 720, "rgb565le")
    screen.set_status(ScreenState.IN_CALL, room="r")
    bar = screen.microphone_rect()
    screen.set_levels({}, microphone=0.1)  # -20 dBFS: two thirds of the bar
    image = screen.compose()
    filled = (np.abs(colour(image, bar, "rgb565le").astype(int) - LEVEL_BAR) <= 8).all(axis=-1).mean(axis=0)
    assert abs(filled.mean() - 2 / 3) < 0.02
    screen.set_levels({}, microphone=0.001)  # -60 dBFS: empty
    empty = (np.abs(colour(screen.compose(), bar, "rgb565le").astype(int) - LEVEL_EMPTY) <= 8).all(axis=-1)
    assert empty.all()
    screen.set_status(ScreenState.IN_CALL, room="r", muted=True)
    screen.set_levels({}, microphone=0.5)
    red = (np.abs(colour(screen.compose(), bar, "rgb565le").astype(int) - MUTED_TEXT) <= 8).all(axis=-1)
    assert red.all(), "muted: the bar is red and shows no level"
    screen.set_levels({}, microphone=None)
    screen.set_status(ScreenState.IN_CALL, room="r")
    assert not (np.abs(colour(screen.compose(), bar, "rgb565le").astype(int) - LEVEL_EMPTY) <= 8).all(axis=-1).all()
