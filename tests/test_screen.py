"""The screen: layouts, letterboxing, names, status/idle/error screens (pixel
tests), the framebuffer output, and a remote pattern on the composed screen."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import av
import numpy as np
import pytest
from av.video.reformatter import VideoReformatter

from appliance.engine import PlayerState, User
from appliance.media import EncoderSettings
from appliance.screen.compositor import (
    BACKGROUND,
    ERROR_BACKGROUND,
    MUTED_TEXT,
    TILE_BACKGROUND,
    Compositor,
    ScreenState,
    _label,
)
from appliance.screen.display import (
    FramebufferGeometry,
    FramebufferOutput,
    HeadlessOutput,
    KmsOutput,
    WindowOutput,
    open_output,
)
from appliance.screen.layout import STRIP_TILES, Rect, fit, grid, share_rects, tile_rects
from appliance.screen.pixels import rgb_to, to_rgb
from appliance.screen.scaler import OVERRUN, Scaler, padded
from appliance.testing import TestPatternSource, read_stamp

from .conftest import profile_for

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200),
           (200, 30, 200), (120, 60, 0), (0, 120, 60), (60, 0, 120), (250, 250, 250), (90, 90, 90)]
SLIDE = (250, 140, 20)  # a colour no tile has


def solid(colour: tuple[int, int, int], width: int = 1280, height: int = 720) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(np.full((height, width, 3), colour, np.uint8), format="rgb24").reformat(format="yuv420p")


def screen_rgb(screen: Compositor) -> np.ndarray:
    return to_rgb(screen.compose(), screen.pixel_format).astype(int)


def close_to(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 12) -> np.ndarray:
    return (np.abs(pixels - np.array(colour)) <= tolerance).all(axis=-1)


def test_grids_and_tile_rectangles():
    assert [grid(n) for n in (1, 2, 3, 4, 5, 9, 14)] == [(1, 1), (2, 1), (2, 2), (2, 2), (3, 3), (3, 3), (3, 3)]
    area = Rect(0, 0, 1920, 1035)
    assert tile_rects(1, area) == [area]
    assert tile_rects(2, area) == [Rect(0, 0, 960, 1035), Rect(960, 0, 960, 1035)]
    assert tile_rects(4, area)[3] == Rect(960, 517, 960, 518)
    assert tile_rects(9, area)[4] == Rect(640, 345, 640, 345)
    assert len(tile_rects(12, area)) == 9
    assert fit(1280, 720, Rect(0, 0, 960, 1035)) == Rect(0, 247, 960, 540), "letterboxed top and bottom"
    assert fit(640, 480, Rect(0, 0, 1920, 1035)) == Rect(270, 0, 1380, 1034), "pillarboxed left and right"


@pytest.mark.parametrize("pixel_format", ["bgra", "rgb565le"])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_each_layout_places_pictures_letterboxes_and_names(count, pixel_format):
    screen = Compositor(1920, 1080, pixel_format)
    screen.set_status(ScreenState.IN_CALL, room="room-42", participants=count + 1)
    for i in range(count):
        screen.show_stream(f"s{i}", f"Person {i}")(solid(COLOURS[i], 640, 480 if i % 2 else 360))
    image = screen_rgb(screen)
    tiles = tile_rects(count, screen.tile_area)
    for i in range(count):
        tile, picture = screen.tile_rect(f"s{i}"), screen.picture_rect(f"s{i}")
        assert tile == tiles[i] and picture == fit(640, 480 if i % 2 else 360, tile)
        inside = image[picture.y + 4 : picture.y + picture.h // 2, picture.x + 4 : picture.x + picture.w - 4]
        assert close_to(inside, COLOURS[i]).mean() > 0.99, f"tile {i} shows its picture"
        bars = [image[tile.y : picture.y, tile.x : tile.x + tile.w], image[tile.y : tile.y + tile.h, tile.x : picture.x]]
        bar = next(b for b in bars if b.size)
        assert close_to(bar[: bar.shape[0] // 2], TILE_BACKGROUND).all(), f"tile {i} letterboxed (above its name)"
        label = image[picture.y + picture.h - tile.h // 8 : tile.y + tile.h, tile.x : tile.x + tile.w // 2]
        assert close_to(label, (255, 255, 255), 40).sum() > 30, f"tile {i} has its name drawn"


def test_names_are_the_rendered_text_at_their_place():
    screen = Compositor(1280, 720, "bgra")
    screen.set_status(ScreenState.IN_CALL, room="r")
    screen.show_stream("a", "Alice")(solid(COLOURS[0]))
    image = screen.compose()
    tile = screen.tile_rect("a")
    size = max(14, tile.h // 16)
    label = _label("Alice", size, (255, 255, 255), (0, 0, 0), "bgra")
    y = tile.y + tile.h - label.shape[0] - size // 2
    x = tile.x + size // 2
    assert np.array_equal(image[y : y + label.shape[0], x : x + label.shape[1]], label)


def test_status_line_says_room_state_and_muted():
    screen = Compositor(1280, 720, "bgra")
    screen.set_status(ScreenState.IN_CALL, room="room-42", participants=3, muted=True)
    image = screen_rgb(screen)
    bar = image[720 - screen.status_height :]
    expected = to_rgb(_label("room-42  ·  in call  ·  3 participants", screen.status_height * 3 // 5,
                             (255, 255, 255), (0, 0, 0), "bgra"), "bgra")
    top = (screen.status_height - expected.shape[0]) // 2
    x = screen.status_height * 3 // 5 // 2
    assert np.array_equal(bar[top : top + expected.shape[0], x : x + expected.shape[1]], expected)
    assert close_to(bar[:, -200:], MUTED_TEXT, 40).sum() > 20, "MUTED in red on the right"
    screen.set_status(ScreenState.RECONNECTING, room="room-42")
    assert not close_to(screen_rgb(screen)[720 - screen.status_height :, -200:], MUTED_TEXT, 40).any()


def test_idle_and_error_screens():
    screen = Compositor(1280, 720, "rgb565le")
    screen.show_stream("a", "Alice")(solid(COLOURS[0]))
    screen.set_status(ScreenState.IDLE, room="Board room")
    idle = screen_rgb(screen)
    assert not close_to(idle, COLOURS[0], 20).any(), "no call pictures on the idle screen"
    assert close_to(idle[: 720 // 5], BACKGROUND, 8).all()
    title = to_rgb(_label("Board room", 72, (255, 255, 255), BACKGROUND, "rgb565le"), "rgb565le")
    x = (1280 - title.shape[1]) // 2
    assert np.array_equal(idle[180 : 180 + title.shape[0], x : x + title.shape[1]], title), "room name, centred"
    assert close_to(idle, (255, 255, 255), 40).sum() > 2000, "clock and 'press JOIN' drawn too"

    screen.set_status(ScreenState.ERROR, room="Board room", detail="the server refused the token")
    error = screen_rgb(screen)
    assert close_to(error[: 720 - screen.status_height], ERROR_BACKGROUND, 8).mean() > 0.9
    detail = to_rgb(_label("the server refused the token", 720 // 22, (255, 255, 255), ERROR_BACKGROUND,
                           "rgb565le"), "rgb565le")
    assert any(
        np.array_equal(error[y : y + detail.shape[0], (1280 - detail.shape[1]) // 2 :][:, : detail.shape[1]], detail)
        for y in range(180, 400)
    ), "the error is spelled out"


def test_an_idle_day_of_clock_minutes_keeps_memory_flat(monkeypatch):
    import tracemalloc

    screen = Compositor(1920, 1080, "bgra")
    screen.set_status(ScreenState.IDLE, room="Board room")
    minute = 0
    monkeypatch.setattr(time, "strftime", lambda _format, *_: f"{minute // 60:02d}:{minute % 60:02d}")
    tracemalloc.start()
    try:
        for minute in range(24 * 60):
            screen.compose()
            if minute == 59:
                after_an_hour = tracemalloc.get_traced_memory()[0]
        after_a_day = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # Measured: with 256 labels cached the rest of the day added 33 MB; with 32, 0.09.
    assert after_a_day - after_an_hour < 2 * 2**20, f"{(after_a_day - after_an_hour) / 2**20:.1f} MB more"


def test_a_drawn_picture_is_let_go_when_a_newer_one_arrives():
    # A decoder's frame pool grows to the most of its pictures ever held at
    # once and never shrinks (FFmpeg's): the screen keeps only the newest
    # picture of a tile, not also the one on the canvas.
    screen = Compositor(640, 360, "bgra")
    screen.set_status(ScreenState.IN_CALL, "room-42")
    sink = screen.show_stream("alice-main", "Alice")
    first, second = solid(COLOURS[0]), solid(COLOURS[1])
    alone = sys.getrefcount(first)
    sink(first)
    screen.compose()
    sink(second)
    assert sys.getrefcount(first) == alone, "the screen still holds a picture it has been given a newer one for"
    screen.compose()
    # A redraw with nothing new (the status line changed) scales the newest again.
    screen.set_status(ScreenState.IN_CALL, "room-42", muted=True)
    rect = screen.picture_rect("alice-main")
    assert rect is not None
    assert close_to(screen_rgb(screen)[rect.slices], COLOURS[1]).mean() > 0.9


@pytest.mark.parametrize("pixel_format", ["bgra", "rgb565le"])
def test_the_scaler_draws_into_the_canvas_what_pyavs_reformat_would_and_nothing_around_it(pixel_format):
    # The screen scales straight into its canvas (appliance.screen.scaler).
    # PyAV's reformat, which it replaced, is the reference: pixel for pixel
    # for the pictures a call brings (tagged BT.709 or not, full range or
    # not), bilinear and area averaging, widths swscale's SIMD code rounds
    # up (it wrote up to 7 pixels past the region before the scaler put them
    # back), and a context set up anew when size or colours change.
    noise = np.random.default_rng(3).integers(0, 255, (360, 640, 3), np.uint8)
    scaler = Scaler()
    for source, colorspace, color_range, (width, height), area in (
        ("yuv420p", 2, 0, (472, 266), False),  # untagged, as the remotes here send
        ("yuv420p", 1, 2, (473, 266), False),  # BT.709, full range
        ("yuvj420p", 2, 0, (300, 170), True),
        ("nv12", 5, 1, (642, 361), False),
    ):
        frame = av.VideoFrame.from_ndarray(noise, format="rgb24").reformat(format=source)
        frame.colorspace, frame.color_range = colorspace, color_range
        expected = VideoReformatter().reformat(frame, width, height, format=pixel_format,
                                               interpolation="AREA" if area else None, threads=1)
        rows = np.frombuffer(expected.planes[0], np.uint8).reshape(height, -1)
        canvas = padded(800 - OVERRUN, 400, pixel_format)  # a picture right up to the slack, too
        canvas.view(np.uint8).reshape(-1)[:] = np.random.default_rng(4).integers(0, 255, canvas.nbytes, np.uint8)
        before = canvas.copy()
        for x in (9, canvas.shape[1] - OVERRUN - width):
            region = (slice(7, 7 + height), slice(x, x + width))
            scaler.scale(frame, canvas[7 : 7 + height], x, width, pixel_format, area=area)
            drawn = canvas[region].view(np.uint8).reshape(height, -1)
            assert (drawn == rows[:, : drawn.shape[1]]).all(), (source, colorspace, x)
            canvas[region] = before[region]
            assert (canvas == before).all(), "the scaler changed pixels outside its region"
    with pytest.raises(ValueError, match="more after it"):
        scaler.scale(frame, canvas[:10], canvas.shape[1] - OVERRUN - 9, 10, pixel_format)


def test_unshown_counts_the_pictures_replaced_before_a_screen_drew_them():
    screen = Compositor(640, 360, "bgra")
    screen.set_status(ScreenState.IN_CALL, "room-42")
    sink = screen.show_stream("alice-main", "Alice")
    for colour in COLOURS[:3]:
        sink(solid(colour))
    screen.compose()
    assert screen.frames_unshown == 2  # the first two were replaced before the screen drew
    sink(solid(COLOURS[3]))
    assert screen.frames_unshown == 2, "a picture still waiting to be drawn is not unshown"
    screen.set_status(ScreenState.IN_CALL, "room-42", muted=True)  # a redraw draws it
    screen.compose()
    assert screen.frames_unshown == 2


def test_beyond_nine_the_most_recently_active_are_shown_and_a_stopped_stream_leaves_at_once():
    screen = Compositor(1920, 1080, "bgra")
    screen.set_status(ScreenState.IN_CALL, room="big")
    for i in range(11):
        screen.show_stream(f"s{i}", f"P{i}")(solid(COLOURS[i]))
    screen.mark_active("s0")
    screen.mark_active("s1")
    shown = screen.visible_streams()
    assert len(shown) == 9 and "s0" in shown and "s1" in shown and "s2" not in shown and "s3" not in shown

    screen = Compositor(1920, 1080, "bgra")
    screen.set_status(ScreenState.IN_CALL, room="r")
    for i in range(3):
        screen.show_stream(f"s{i}", f"P{i}")(solid(COLOURS[i]))
    screen.compose()
    screen.remove_stream("s1")
    image = screen_rgb(screen)  # the very next frame
    assert close_to(image, COLOURS[1]).sum() == 0, "the stopped stream is gone from the next frame"
    assert screen.tile_rect("s2") == tile_rects(2, screen.tile_area)[1], "the others reflow side by side"


@pytest.mark.parametrize("pixel_format", ["bgra", "rgb565le"])
def test_a_share_is_large_never_scaled_up_the_newest_wins_and_the_others_are_a_strip(pixel_format):
    screen = Compositor(1920, 1080, pixel_format)
    screen.set_status(ScreenState.IN_CALL, room="r")
    for i in range(7):
        screen.show_stream(f"cam{i}", f"P{i}")(solid(COLOURS[i], 640, 360))
    screen.mark_active("cam0")
    screen.show_stream("alice-share", "Alice", share=True)(solid(SLIDE, 1280, 720))
    share, strip = share_rects(STRIP_TILES, screen.tile_area)
    assert screen.sharing == "Alice" and screen.tile_rect("alice-share") == share
    assert screen.picture_rect("alice-share") == Rect(320, 54, 1280, 720), "at its own size, centred"
    shown = screen.visible_streams()
    assert shown[0] == "alice-share" and len(shown) == 1 + STRIP_TILES and "cam0" in shown, "the most active in the strip"
    assert [screen.tile_rect(s) for s in shown[1:]] == strip
    image = screen_rgb(screen)
    picture = screen.picture_rect("alice-share")
    assert close_to(image[picture.slices][60:], SLIDE).mean() > 0.99, "the share's picture (below the label)"
    label = to_rgb(screen.share_label("Alice"), pixel_format)
    assert any(np.array_equal(image[y : y + label.shape[0], x : x + label.shape[1]], label)
               for y in range(0, 40) for x in range(0, 40)), "who is sharing, top left"

    # A newer share wins and a larger one is scaled down only to fit; Alice's goes to the strip.
    screen.show_stream("bob-share", "Bob", share=True)(solid(COLOURS[2], 2560, 1440))
    assert screen.sharing == "Bob" and screen.picture_rect("bob-share") == fit(2560, 1440, share)
    assert screen.tile_rect("alice-share") in strip
    screen.remove_stream("bob-share")
    assert screen.sharing == "Alice" and screen.tile_rect("alice-share") == share
    screen.remove_stream("alice-share")
    assert screen.sharing is None and screen.visible_streams() == [f"cam{i}" for i in range(7)]
    assert screen.tile_rect("cam0") == tile_rects(7, screen.tile_area)[0], "the grid is back"
    assert close_to(screen_rgb(screen), SLIDE).sum() == 0, "the share is gone from the next frame"


@pytest.mark.parametrize(("bits", "pixel_format"), [(16, "rgb565le"), (32, "bgra")])
def test_framebuffer_writes_pixels_with_a_padded_stride(tmp_path, bits, pixel_format):
    width, height, padding = 100, 60, 24
    line_length = width * bits // 8 + padding
    fb = tmp_path / "fb0"
    fb.write_bytes(b"\xab" * line_length * height)
    output = FramebufferOutput(str(fb), FramebufferGeometry(width, height, bits, line_length))
    assert output.pixel_format == pixel_format
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, :50] = (255, 0, 0)
    rgb[:, 50:] = (0, 0, 255)
    rgb[10, 10] = (0, 255, 0)
    output.show(rgb_to(rgb, pixel_format))
    output.close()
    raw = np.frombuffer(fb.read_bytes(), np.uint8).reshape(height, line_length)
    assert (raw[:, width * bits // 8 :] == 0xAB).all(), "the padding of every row is left alone"
    pixels = raw[:, : width * bits // 8]
    if bits == 32:
        shown = pixels.reshape(height, width, 4)
        assert tuple(shown[0, 0, :3]) == (0, 0, 255) and tuple(shown[0, 99, :3]) == (255, 0, 0), "B, G, R in memory"
        assert tuple(shown[10, 10, :3]) == (0, 255, 0)
    else:
        shown = pixels.view(np.uint16)
        assert shown[0, 0] == 0xF800 and shown[0, 99] == 0x001F and shown[10, 10] == 0x07E0


def test_framebuffer_geometry_refuses_other_depths():
    with pytest.raises(ValueError, match="16 or 32"):
        FramebufferGeometry(10, 10, 24, 30).pixel_format


async def test_remote_pattern_appears_in_its_tile(janus, room_id, engines):
    a, rec_a = engines(profile_for(janus))
    b, rec_b = engines(profile_for(janus))
    screen = Compositor(1920, 1080, "bgra")
    output = HeadlessOutput(1920, 1080, "bgra")
    await a.login_room(room_id, User("alice"))
    await a.start_publishing_stream("alice-cam", video=TestPatternSource(EncoderSettings()))
    await b.login_room(room_id, User("bob"))
    screen.set_status(ScreenState.IN_CALL, room=room_id, participants=2)
    screen.show_stream("other", "Other")(solid(COLOURS[3]))
    await b.start_playing_stream("alice-cam", video_sink=screen.show_stream("alice-cam", "Alice"))
    runner = asyncio.create_task(screen.run(output))
    try:
        await rec_b.wait_for(lambda: b.player_state("alice-cam") is PlayerState.PLAYING)
        numbers = []
        for _ in range(20):
            await asyncio.sleep(0.1)
            picture = screen.picture_rect("alice-cam")
            if picture is None or output.last_image is None:
                continue
            stamp = read_stamp(to_rgb(output.last_image[picture.slices], "bgra"))
            if stamp is not None:
                numbers.append(stamp.frame_number)
        assert len(numbers) >= 10, "the pattern's stamp reads back from the composed screen"
        assert numbers == sorted(numbers) and numbers[-1] > numbers[0], "and it moves on"
        assert screen.picture_rect("alice-cam").x >= 960, "in its own tile, the second one"
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def test_kms_output_flips_between_two_buffers(monkeypatch):
    from . import fakepykms

    monkeypatch.setitem(sys.modules, "pykms", fakepykms.module)
    output = KmsOutput()
    card = fakepykms.module.cards[-1]
    assert (output.width, output.height, output.pixel_format) == (320, 180, "bgra")
    assert card.commits[0]["allow_modeset"] and card.commits[0]["mode"] == "mode-blob"
    images = []
    for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
        rgb = np.zeros((180, 320, 3), np.uint8)
        rgb[:] = colour
        rgb[5, 7] = (255, 255, 255)
        images.append(rgb_to(rgb, "bgra"))
        output.show(images[-1])
    shown = [commit["plane"][1] for commit in card.commits[1:]]
    assert shown[0] is shown[2] and shown[0] is not shown[1], "two buffers, flipped in turn"
    stride = 320 * 4 + fakepykms.STRIDE_PADDING
    raw = np.frombuffer(shown[2].read(), np.uint8).reshape(180, stride)
    assert np.array_equal(raw[:, : 320 * 4].reshape(180, 320, 4), images[2]), "pixels land row by row at the stride"
    assert all(commit["plane"][3] == (0, 0, 320, 180) for commit in card.commits)
    output.close()


def test_window_output_shows_the_picture(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    output = WindowOutput(160, 90, "rgb565le")
    rgb = np.zeros((90, 160, 3), np.uint8)
    rgb[:, 80:] = (0, 0, 255)
    output.show(rgb_to(rgb, "rgb565le"))
    assert output.pixel(10, 10) == (0, 0, 0) and output.pixel(150, 80) == (0, 0, 255)
    output.close()


def test_auto_output_falls_back_to_headless(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setitem(sys.modules, "pykms", None)  # kms++ not installed
    output = open_output("auto", 640, 360, framebuffer="/nonexistent/fb0")
    assert isinstance(output, HeadlessOutput) and (output.width, output.height) == (640, 360)
    with pytest.raises(ValueError, match="auto, kms"):
        open_output("hdmi")


def test_tiles_come_and_go_while_another_thread_composes():
    """compose() runs in the screen's thread while the call adds and removes tiles."""
    screen = Compositor(640, 360, "bgra")
    screen.set_status(ScreenState.IN_CALL, room="r")
    stop = threading.Event()
    errors: list[BaseException] = []

    def compose_forever() -> None:
        while not stop.is_set():
            try:
                screen.compose()
            except BaseException as exc:  # noqa: BLE001 - the test reports whatever broke
                errors.append(exc)
                return

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    worker = threading.Thread(target=compose_forever)
    worker.start()
    try:
        frame = solid(COLOURS[0], 320, 180)
        for n in range(3000):
            screen.show_stream(f"s{n % 13}", "x")(frame)
            screen.remove_stream(f"s{(n * 5) % 13}")
    finally:
        stop.set()
        worker.join()
        sys.setswitchinterval(switch)
    assert errors == []


def test_an_error_longer_than_the_screen_is_wrapped_not_a_broken_frame():
    screen = Compositor(640, 360, "bgra")
    detail = "refused: room '5001' has a PIN and refused the PIN it was given (janus error 433: Unauthorized (wrong pin))"
    screen.set_status(ScreenState.ERROR, room="5001", detail=detail)
    rgb = to_rgb(screen.compose(), "bgra")[: 360 - screen.status_height]  # raised on the old code: too wide a line
    text_rows = np.flatnonzero((np.abs(rgb.astype(int) - ERROR_BACKGROUND).sum(axis=2) > 60).any(axis=1))
    lines = np.count_nonzero(np.diff(text_rows) > 1) + 1
    assert lines >= 3, "the title and the detail on two lines or more"
    columns = np.flatnonzero((np.abs(rgb.astype(int) - ERROR_BACKGROUND).sum(axis=2) > 60).any(axis=0))
    assert columns.min() > 0 and columns.max() < 639, "every line within the screen"


async def test_once_the_screen_is_stopped_its_output_is_no_longer_in_use():
    """The daemon closes the output (a framebuffer's mapping, a KMS card)
    right after it cancels the screen: a screen still being shown then would
    write into a closed mapping."""

    class SlowOutput(HeadlessOutput):
        def __init__(self) -> None:
            super().__init__(320, 180, "bgra")
            self.showing = threading.Event()
            self.in_show = 0

        def show(self, image: np.ndarray) -> None:
            self.in_show += 1
            self.showing.set()
            time.sleep(0.3)
            super().show(image)
            self.in_show -= 1

    screen = Compositor(320, 180, "bgra")
    output = SlowOutput()
    screen.set_status(ScreenState.IN_CALL, "room")
    runner = asyncio.create_task(screen.run(output))
    await asyncio.to_thread(output.showing.wait, 5)
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert output.in_show == 0, "the screen was still being shown after run() returned"
    frames = output.frames
    await asyncio.sleep(0.6)
    assert output.frames == frames, "the screen went on after run() returned"


async def test_frames_late_counts_deadlines_missed_while_a_frame_waits():
    """compose4_dropped's counter: an idle gap between remote frames misses no
    display frame; an output slower than the display does, while frames wait."""

    class SlowOutput(HeadlessOutput):
        delay = 0.0

        def show(self, image: np.ndarray) -> None:
            time.sleep(self.delay)
            super().show(image)

    screen = Compositor(320, 180, "bgra", fps=10)
    output = SlowOutput(320, 180, "bgra")
    sink = screen.show_stream("remote", "Remote")
    screen.set_status(ScreenState.IN_CALL, "room")
    runner = asyncio.create_task(screen.run(output))
    try:
        for pause in (0.15, 0.6, 1.2, 0.3):  # idle gaps of up to 12 display frames
            sink(solid(COLOURS[0]))
            await asyncio.sleep(pause)
        assert screen.frames_late == 0 and output.frames >= 4
        output.delay = 0.35  # 3.5 display frames a screen: every frame sent meanwhile waits
        for _ in range(8):
            sink(solid(COLOURS[1]))
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.8)
        assert screen.frames_late >= 3
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
