"""The screen: remote participants in tiles, names, status line.

Each played stream gets a sink that keeps only its newest frame; the
compositor lays the tiles out (see :mod:`appliance.screen.layout`: a grid,
or the newest content share large above a strip of the others), scales each
picture with swscale straight to the output's pixel format, and draws names
and the status line with Pillow. The loudest talking stream (from the
levels :meth:`Compositor.set_levels` is given) has a highlighted frame, and
the status line carries the microphone's level bar (red while muted). Out of
a call it shows an idle screen (room name, clock, "press JOIN") or an error
screen. :meth:`Compositor.run` paces
composition at the display's frame rate and hands each frame to an output.

Example:

>>> import av
>>> screen = Compositor(640, 360, "bgra")
>>> sink = screen.show_stream("alice-main", "Alice")  # give it to start_playing_stream
>>> sink(av.VideoFrame(320, 180, "yuv420p"))
>>> screen.set_status(ScreenState.IN_CALL, "room-42")
>>> screen.compose().shape
(360, 640, 4)
>>> share = screen.show_stream("bob-share", "Bob", share=True)
>>> share(av.VideoFrame(400, 240, "yuv420p"))
>>> screen.sharing, screen.picture_rect("bob-share")  # large, at its own size
('Bob', Rect(x=120, y=14, w=400, h=240))
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Protocol

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .layout import MAX_TILES, STRIP_TILES, Rect, fit, fit_within, share_rects, tile_rects
from .pixels import PIXEL_FORMATS, png_bytes, rgb_to
from .scaler import Scaler, padded

BACKGROUND = (16, 16, 16)
TILE_BACKGROUND = (40, 40, 40)
STATUS_BACKGROUND = (0, 0, 0)
ERROR_BACKGROUND = (110, 20, 20)
TEXT = (255, 255, 255)
MUTED_TEXT = (255, 90, 90)
HIGHLIGHT = (255, 196, 0)  # the active speaker's frame
LEVEL_BAR = (80, 220, 120)
LEVEL_EMPTY = (60, 60, 60)
log = logging.getLogger(__name__)
IDLE_REDRAW = 0.5  # seconds between redraws when nothing new arrives
# A played stream this loud (RMS, 0..1 of full scale; -40 dBFS) is talking.
TALKING = 0.01
LEVEL_FLOOR_DB = -60  # the microphone bar's empty end


class ScreenState(Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    IN_CALL = "in call"
    RECONNECTING = "reconnecting"
    ERROR = "error"


class Output(Protocol):
    """Where composed frames go: a framebuffer, KMS, a window, or nowhere."""

    width: int
    height: int
    pixel_format: str

    def show(self, image: np.ndarray) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Tile:
    name: str
    order: int
    active: float
    share: bool = False
    # The newest frame and its number (``received`` when it came), set together
    # by the sink on the loop and read together by compose() in the screen's thread.
    newest: tuple[av.VideoFrame, int] | None = None
    received: int = 0
    # Pictures replaced before they were drawn: counted by compose(), from the
    # numbers it skips, so that nothing still waiting is counted.
    unshown: int = 0
    # The number of the picture on the canvas, and where. Not the frame itself:
    # a replaced frame is freed at once, and its decoder's frame pool needs one
    # picture fewer.
    drawn: tuple[int, Rect] | None = None
    # One scaler for the tile's life: a swscale context set up for every frame
    # cost 3.7 ms of CPU a 720p frame instead of 1.3 on the benchmark machine.
    scaler: Scaler = field(default_factory=Scaler, repr=False)

    @property
    def frame(self) -> av.VideoFrame | None:
        return self.newest[0] if self.newest is not None else None


# A 9-tile screen shows about 16 labels (names, status, MUTED, a share's).
# Every idle minute brings a new clock label (180 KB at 1080p): a cache of
# 256 held 45 MB after four idle hours.
LABELS_CACHED = 32


@lru_cache(maxsize=LABELS_CACHED)
def _label(text: str, size: int, fg: tuple[int, int, int], bg: tuple[int, int, int], pixel_format: str) -> np.ndarray:
    """Text on an opaque box, in the output's pixel format (cached)."""
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text, font=font)
    pad = max(2, size // 4)
    width = (right - left + 2 * pad + 1) & ~1
    height = (bottom - top + 2 * pad + 1) & ~1
    image = Image.new("RGB", (width, height), bg)
    ImageDraw.Draw(image).text((pad - left, pad - top), text, font=font, fill=fg)
    return rgb_to(np.asarray(image), pixel_format)


def _picture(tile: _Tile, rect: Rect, large: bool) -> Rect | None:
    """Where the tile's picture goes inside ``rect`` (letterboxed), once it has
    one; the share shown large is never scaled up."""
    frame = tile.frame  # once: the sink may replace it meanwhile (another thread)
    if frame is None:
        return None
    return (fit_within if large else fit)(frame.width, frame.height, rect)


def _flat(image: np.ndarray) -> np.ndarray:
    """An image with one integer per pixel (bgra pixels seen as uint32)."""
    return image.view(np.uint32)[..., 0] if image.ndim == 3 else image


def _paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> Rect:
    """Copies ``image`` onto ``canvas`` at (x, y), clipped to the canvas on every side."""
    if x < 0 or y < 0:
        image, x, y = image[max(0, -y):, max(0, -x):], max(0, x), max(0, y)
    h = max(0, min(image.shape[0], canvas.shape[0] - y))
    w = max(0, min(image.shape[1], canvas.shape[1] - x))
    canvas[y : y + h, x : x + w] = image[:h, :w]
    return Rect(x, y, w, h)


def _wrap(text: str, size: int, width: int) -> list[str]:
    """``text`` cut at spaces into lines that fit ``width`` pixels (a word longer than that stays whole)."""
    font = ImageFont.load_default(size=size)
    lines: list[str] = []
    for word in text.split(" "):
        if lines and font.getlength(f"{lines[-1]} {word}") + size <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


class Compositor:
    """Composes the appliance's screen; see the module docs."""

    def __init__(self, width: int = 1920, height: int = 1080, pixel_format: str = "bgra", fps: float = 60) -> None:
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"pixel format must be one of {PIXEL_FORMATS}, not {pixel_format!r}")
        self.width, self.height, self.pixel_format, self.fps = width, height, pixel_format, fps
        self.state = ScreenState.IDLE
        self.room = ""
        self.detail = ""
        self.muted = False
        self.participants: int | None = None
        self.active_speaker: str | None = None  # the loudest talking stream, highlighted
        self.microphone_level: float | None = None  # None: no microphone to show
        # Display frames missed while a remote frame was waiting to be shown
        # (composing fell behind); idle gaps between frames do not count.
        self.frames_late = 0
        self.last_image: np.ndarray | None = None
        self.status_height = max(24, height // 24)
        # Replaced, never changed in place: compose() reads it from the screen's
        # thread while sinks and the call add and remove tiles on the loop.
        self._tiles: dict[str, _Tile] = {}
        self._order = 0
        # Each colour as one pixel value: uint32 for bgra, uint16 for rgb565le.
        self._colors = {
            color: _flat(rgb_to(np.full((1, 1, 3), color, np.uint8), pixel_format))[0, 0]
            for color in (BACKGROUND, TILE_BACKGROUND, STATUS_BACKGROUND, ERROR_BACKGROUND, HIGHLIGHT, LEVEL_BAR,
                          LEVEL_EMPTY, MUTED_TEXT)
        }
        # The screen is its [:, :width]; the columns after are the scaler's slack.
        self._padded = padded(width, height, pixel_format)
        self._canvas = self._padded[:, :width]
        self._new_frame = threading.Event()  # set on the loop, waited for by the screen's thread
        self._waiting_since: float | None = None  # when the oldest frame not yet composed arrived
        self._last_error = 0.0
        self._layout: tuple[object, ...] | None = None
        # For measuring (make bench): frame_clock(stage, pts, time.monotonic())
        # hears "delivered" (a sink got the frame) and "composed" (it is
        # scaled onto the canvas; the output is shown the canvas next).
        self.frame_clock: Callable[[str, int, float], None] | None = None

    # -- what to show -------------------------------------------------------

    def show_stream(self, stream_id: str, name: str = "", share: bool = False) -> Callable[[av.VideoFrame], None]:
        """Adds a tile for ``stream_id``; returns the sink that feeds it.

        A ``share`` (content, not a camera) is shown large while it is the
        newest share; the others go to a strip below it.
        """
        tile = self._tiles.get(stream_id)
        if tile is None:
            self._order += 1
            tile = _Tile(name or stream_id, self._order, time.monotonic(), share)
            self._tiles = {**self._tiles, stream_id: tile}

        def sink(frame: av.VideoFrame) -> None:
            tile.received += 1
            tile.newest = (frame, tile.received)  # only the newest frame is kept
            if self._waiting_since is None:
                self._waiting_since = time.monotonic()
            self._new_frame.set()
            if self.frame_clock is not None:
                self.frame_clock("delivered", frame.pts, time.monotonic())

        return sink

    def remove_stream(self, stream_id: str) -> None:
        """Takes the stream's tile off the screen from the next frame on."""
        self._tiles = {key: tile for key, tile in self._tiles.items() if key != stream_id}
        self._new_frame.set()

    def mark_active(self, stream_id: str) -> None:
        """Counts ``stream_id`` as just active (speaking); beyond nine remotes
        the most recently active ones are shown."""
        if stream_id in self._tiles:
            self._tiles[stream_id].active = time.monotonic()

    def set_levels(self, levels: dict[str, float], microphone: float | None = None) -> None:
        """Each played stream's audio level and the microphone's (RMS, 0..1).

        Streams at ``TALKING`` or louder count as active (beyond nine remotes
        the most recently active are shown); the loudest is highlighted. The
        microphone's level is the bar in the status line.
        """
        talking = {s: level for s, level in levels.items() if level >= TALKING and s in self._tiles}
        for stream_id in talking:
            self.mark_active(stream_id)
        loudest = max(talking, key=talking.__getitem__) if talking else None
        self.microphone_level = microphone
        if loudest != self.active_speaker:
            self.active_speaker = loudest
            self._new_frame.set()

    def set_status(
        self,
        state: ScreenState,
        room: str = "",
        detail: str = "",
        muted: bool = False,
        participants: int | None = None,
    ) -> None:
        self.state, self.room, self.detail, self.muted, self.participants = state, room, detail, muted, participants
        self._new_frame.set()

    @property
    def frames_unshown(self) -> int:
        """Remote frames replaced by a newer one before a screen showed them."""
        return sum(t.unshown for t in self._tiles.values())

    # -- geometry -----------------------------------------------------------

    @property
    def tile_area(self) -> Rect:
        return Rect(0, 0, self.width, self.height - self.status_height)

    @staticmethod
    def _large_share(tiles: dict[str, _Tile]) -> str | None:
        """The share shown large: the newest."""
        shares = [s for s, tile in tiles.items() if tile.share]
        return max(shares, key=lambda s: tiles[s].order) if shares else None

    def _arrange(self, tiles: dict[str, _Tile]) -> list[tuple[str, Rect]]:
        """The streams on screen with their tiles' rectangles: the large share first, if any."""
        large = self._large_share(tiles)
        ids = [s for s in tiles if s != large]
        room = MAX_TILES if large is None else STRIP_TILES
        if len(ids) > room:
            recent = sorted(ids, key=lambda s: tiles[s].active, reverse=True)[:room]
            ids = [s for s in ids if s in recent]
        ids.sort(key=lambda s: tiles[s].order)
        if large is None:
            return list(zip(ids, tile_rects(len(ids), self.tile_area)))
        share, strip = share_rects(len(ids), self.tile_area)
        return [(large, share), *zip(ids, strip)]

    @property
    def sharing(self) -> str | None:
        """The name of whoever's share is shown large, if anyone's is."""
        tiles = self._tiles
        large = self._large_share(tiles)
        return tiles[large].name if large is not None else None

    def visible_streams(self, tiles: dict[str, _Tile] | None = None) -> list[str]:
        """The streams on screen: the large share first, then the tiles in order."""
        return [s for s, _ in self._arrange(self._tiles if tiles is None else tiles)]

    def tile_rect(self, stream_id: str, tiles: dict[str, _Tile] | None = None) -> Rect | None:
        return dict(self._arrange(self._tiles if tiles is None else tiles)).get(stream_id)

    def picture_rect(self, stream_id: str, tiles: dict[str, _Tile] | None = None) -> Rect | None:
        """Where the stream's picture is drawn inside its tile (letterboxed)."""
        tiles = self._tiles if tiles is None else tiles
        rect, tile = self.tile_rect(stream_id, tiles), tiles.get(stream_id)
        if rect is None or tile is None:
            return None
        return _picture(tile, rect, stream_id == self._large_share(tiles))

    def compose(self) -> np.ndarray:
        """Draws one screen in the output's pixel format.

        The canvas persists between frames: backgrounds, letterboxes and the
        status line are redrawn only when the layout or the status changes,
        so an ordinary frame costs one scale and one copy per new picture.
        """
        tiles = self._tiles  # one snapshot for the whole frame
        placed = self._arrange(tiles) if self.state not in (ScreenState.IDLE, ScreenState.ERROR) else []
        large = self._large_share(tiles)
        layout = (
            self.state, self.room, self.detail, self.muted, self.participants, time.strftime("%H:%M"),
            tuple((s, r, _picture(tiles[s], r, s == large), tiles[s].name) for s, r in placed), self.active_speaker,
        )
        canvas = self._canvas
        redraw = layout != self._layout
        if redraw:
            self._layout = layout
            if self.state in (ScreenState.IDLE, ScreenState.ERROR):
                self._draw_message_screen(canvas)
            else:
                self._fill(canvas, Rect(0, 0, self.width, self.height), BACKGROUND)
                for _, rect in placed:
                    self._fill(canvas, rect, TILE_BACKGROUND)
            self._draw_status(canvas)
        for stream_id, rect in placed:
            self._draw_tile(canvas, tiles[stream_id], rect, redraw, stream_id == large)
            if stream_id == self.active_speaker:
                self._draw_frame(canvas, rect)
        if self.state not in (ScreenState.IDLE, ScreenState.ERROR):
            self._draw_microphone(canvas)
        self.last_image = canvas
        return canvas

    def _fill(self, canvas: np.ndarray, rect: Rect, color: tuple[int, int, int]) -> None:
        # One 32- or 16-bit store per pixel, much faster than broadcasting 4 bytes.
        _flat(canvas)[rect.slices] = self._colors[color]

    def _draw_tile(self, canvas: np.ndarray, tile: _Tile, rect: Rect, redraw: bool, large: bool) -> None:
        picture = _picture(tile, rect, large)
        if picture is not None:
            self._draw_picture(tile, picture, redraw, large)
        if large:  # who is sharing, top left, in the letterbox when there is room
            label = self.share_label(tile.name)
            _paste(canvas, label, rect.x + label.shape[0] // 4, rect.y + label.shape[0] // 8)
            return
        size = max(14, rect.h // 16)
        label = _label(tile.name, size, TEXT, STATUS_BACKGROUND, self.pixel_format)
        _paste(canvas, label, rect.x + size // 2, rect.y + rect.h - label.shape[0] - size // 2)

    def share_label(self, name: str) -> np.ndarray:
        """The "<name> is sharing" label over the large share, in the output's pixel format."""
        return _label(f"{name} is sharing", self.status_height * 3 // 5, TEXT, STATUS_BACKGROUND, self.pixel_format)

    def _draw_picture(self, tile: _Tile, rect: Rect, redraw: bool, large: bool) -> None:
        """Scales each new frame straight onto the canvas; an unchanged picture
        is left as it is unless everything is being redrawn (then it is scaled
        again: keeping each tile's scaled copy for redraws, rare, cost up to
        2 MB of memory per tile)."""
        assert tile.newest is not None
        frame, number = tile.newest
        new = tile.drawn != (number, rect)
        if new or redraw:
            # A large share is mostly text: area averaging keeps thin strokes when it must shrink.
            tile.scaler.scale(frame, self._padded[rect.y : rect.y + rect.h], rect.x, rect.w, self.pixel_format,
                              area=large)
        if new:
            previous = tile.drawn[0] if tile.drawn is not None else 0
            tile.unshown += max(0, number - previous - 1)
            tile.drawn = (number, rect)
            if self.frame_clock is not None:
                self.frame_clock("composed", frame.pts, time.monotonic())

    def highlight_width(self) -> int:
        """How thick the active speaker's frame is (pixels)."""
        return max(3, self.height // 180)

    def _draw_frame(self, canvas: np.ndarray, rect: Rect) -> None:
        """The active speaker's frame, inside the tile's edges."""
        w = self.highlight_width()
        for edge in (Rect(rect.x, rect.y, rect.w, w), Rect(rect.x, rect.y + rect.h - w, rect.w, w),
                     Rect(rect.x, rect.y, w, rect.h), Rect(rect.x + rect.w - w, rect.y, w, rect.h)):
            self._fill(canvas, edge, HIGHLIGHT)

    def microphone_rect(self) -> Rect:
        """Where the microphone's level bar is: the status line, left of "MUTED"."""
        h = max(4, self.status_height // 3)
        w = self.status_height * 4
        return Rect(self.width - w - self.status_height * 4, self.height - (self.status_height + h) // 2, w, h)

    def _draw_microphone(self, canvas: np.ndarray) -> None:
        """The bar: filled as far as the microphone's level (-60 to 0 dBFS); red and empty while muted."""
        if self.microphone_level is None:
            return
        bar = self.microphone_rect()
        self._fill(canvas, bar, MUTED_TEXT if self.muted else LEVEL_EMPTY)
        if not self.muted and self.microphone_level > 0:
            db = 20 * math.log10(self.microphone_level)
            filled = int(bar.w * min(1.0, max(0.0, (db - LEVEL_FLOOR_DB) / -LEVEL_FLOOR_DB)))
            if filled:
                self._fill(canvas, Rect(bar.x, bar.y, filled, bar.h), LEVEL_BAR)

    def _draw_status(self, canvas: np.ndarray) -> None:
        top = self.height - self.status_height
        self._fill(canvas, Rect(0, top, self.width, self.status_height), STATUS_BACKGROUND)
        parts = [self.room or "appliance", self.state.value]
        if self.participants is not None and self.state is ScreenState.IN_CALL:
            parts.append(f"{self.participants} participant{'s' if self.participants != 1 else ''}")
        if self.detail and self.state is not ScreenState.ERROR:
            parts.append(self.detail)
        size = self.status_height * 3 // 5
        label = _label("  ·  ".join(parts), size, TEXT, STATUS_BACKGROUND, self.pixel_format)
        _paste(canvas, label, size // 2, top + (self.status_height - label.shape[0]) // 2)
        if self.muted:
            muted = _label("MUTED", size, MUTED_TEXT, STATUS_BACKGROUND, self.pixel_format)
            _paste(canvas, muted, self.width - muted.shape[1] - size // 2, top + (self.status_height - muted.shape[0]) // 2)

    def _draw_message_screen(self, canvas: np.ndarray) -> None:
        error = self.state is ScreenState.ERROR
        background = ERROR_BACKGROUND if error else BACKGROUND
        self._fill(canvas, Rect(0, 0, self.width, self.height), background)
        big, small = self.height // 10, self.height // 22
        if error:
            lines = [("Cannot join the call", big)]
            lines += [(line, small) for line in _wrap(self.detail or "unknown error", small, self.width * 9 // 10)]
        else:
            lines = [(self.room or "appliance", big), (time.strftime("%H:%M"), big), ("Press JOIN to start the call", small)]
        y = self.height // 4
        for text, size in lines:
            label = _label(text, size, TEXT, background, self.pixel_format)
            _paste(canvas, label, (self.width - label.shape[1]) // 2, y)
            y += label.shape[0] + size // 2

    # -- output -------------------------------------------------------------

    def screenshot_png(self) -> bytes:
        """The last composed screen as PNG (composes one if there is none)."""
        image = self.last_image if self.last_image is not None else self.compose()
        return png_bytes(image, self.pixel_format)

    async def run(self, output: Output) -> None:
        """Composes and shows frames until cancelled.

        A new remote frame is composed as soon as it arrives (waiting for a
        fixed tick would add up to a frame period of delay), at most at the
        display's rate. Changes of status and layout wake it too; with
        nothing new it redraws every ``IDLE_REDRAW`` seconds (the clock).
        Composition runs in a thread of its own, started here and joined
        (off the loop) when this is cancelled, so that the output is no
        longer in use once this returns. The event loop keeps the media
        flowing and only sets an event per frame: a hop to a worker thread and
        back for every screen (``asyncio.to_thread``) cost about 0.3 ms of
        CPU here, mostly waking threads.
        """
        if (output.width, output.height, output.pixel_format) != (self.width, self.height, self.pixel_format):
            raise ValueError("the output's geometry and pixel format differ from the compositor's")
        stop = threading.Event()
        thread = threading.Thread(target=self._show_frames, args=(output, stop), name="screen", daemon=True)
        thread.start()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            stop.set()
            self._new_frame.set()
            await asyncio.to_thread(thread.join)

    def _show_frames(self, output: Output, stop: threading.Event) -> None:
        """The screen's thread: composes and shows a screen per wake-up, paced to the display's rate."""
        interval = 1 / self.fps
        last: float | None = None
        while True:
            self._new_frame.wait(IDLE_REDRAW)
            if stop.is_set():
                return
            self._new_frame.clear()
            now = time.monotonic()
            if last is not None and now < last + interval:
                time.sleep(last + interval - now)
                now = time.monotonic()
            waiting, self._waiting_since = self._waiting_since, None
            if waiting is not None:
                earliest = waiting if last is None else max(waiting, last + interval)  # its first possible deadline
                self.frames_late += int((now - earliest) / interval)
            last = now
            try:
                output.show(self.compose())
            except Exception:  # the screen must keep going; say what went wrong, once a second at most
                if now - self._last_error > 1:
                    log.exception("composing or showing a frame failed")
                    self._last_error = now
