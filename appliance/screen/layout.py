"""Where each remote participant goes on the screen.

One remote fills the screen, two sit side by side, up to four in 2x2, up to
nine in 3x3; beyond nine the most recently active nine are shown. Each picture
keeps its aspect ratio inside its tile (letterboxed).

While someone shares content, the share takes the screen above a strip of
the others (cameras, older shares): at most ``STRIP_TILES``, the most
recently active. A share is never scaled up and scaled down only as much as
it must be, so its text stays sharp.

>>> tiles = tile_rects(3, Rect(0, 0, 1920, 1040))  # 2x2 grid, three used
>>> tiles[0]
Rect(x=0, y=0, w=960, h=520)
>>> fit(1280, 720, tiles[0])  # the picture's rectangle in it
Rect(x=18, y=0, w=924, h=520)
>>> share, strip = share_rects(2, Rect(0, 0, 1920, 1035))  # a share and two cameras
>>> share, strip[0]
(Rect(x=0, y=0, w=1920, h=828), Rect(x=592, y=828, w=368, h=207))
>>> fit_within(1280, 720, share)  # shown at its own size, centred
Rect(x=320, y=54, w=1280, h=720)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_TILES = 9
STRIP_TILES = 5  # below a share: 16:9 tiles a fifth of the screen high fill a 16:9 screen's width with five
STRIP_FRACTION = 5  # the strip is a fifth of the height


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices of this rectangle in an image array."""
        return slice(self.y, self.y + self.h), slice(self.x, self.x + self.w)


def grid(count: int) -> tuple[int, int]:
    """(columns, rows) for ``count`` tiles."""
    if count <= 1:
        return 1, 1
    if count == 2:
        return 2, 1
    side = min(3, math.ceil(math.sqrt(min(count, MAX_TILES))))
    return side, side


def tile_rects(count: int, area: Rect) -> list[Rect]:
    """Rectangles of the first ``min(count, 9)`` tiles, row by row."""
    columns, rows = grid(count)
    tiles = []
    for index in range(min(count, MAX_TILES)):
        row, column = divmod(index, columns)
        x0 = area.x + area.w * column // columns
        x1 = area.x + area.w * (column + 1) // columns
        y0 = area.y + area.h * row // rows
        y1 = area.y + area.h * (row + 1) // rows
        tiles.append(Rect(x0, y0, x1 - x0, y1 - y0))
    return tiles


def fit(width: int, height: int, tile: Rect) -> Rect:
    """The largest rectangle of the picture's aspect ratio centred in ``tile``
    (even sizes, as the scaler wants)."""
    scale = min(tile.w / width, tile.h / height)
    w = max(2, int(width * scale) & ~1)
    h = max(2, int(height * scale) & ~1)
    return Rect(tile.x + (tile.w - w) // 2, tile.y + (tile.h - h) // 2, w, h)


def fit_within(width: int, height: int, area: Rect) -> Rect:
    """Like :func:`fit`, but never larger than the picture itself (a share's text stays sharp)."""
    if width <= area.w and height <= area.h:
        w, h = width & ~1, height & ~1
        return Rect(area.x + (area.w - w) // 2, area.y + (area.h - h) // 2, w, h)
    return fit(width, height, area)


def share_rects(others: int, area: Rect) -> tuple[Rect, list[Rect]]:
    """The share's rectangle and, below it, the strip's tiles for ``others``
    streams (at most ``STRIP_TILES``, centred, 16:9 at most)."""
    if others <= 0:
        return area, []
    count = min(others, STRIP_TILES)
    strip_h = area.h // STRIP_FRACTION
    tile_w = min(area.w // count, strip_h * 16 // 9)
    x0, y = area.x + (area.w - tile_w * count) // 2, area.y + area.h - strip_h
    return Rect(area.x, area.y, area.w, area.h - strip_h), [Rect(x0 + i * tile_w, y, tile_w, strip_h) for i in range(count)]
