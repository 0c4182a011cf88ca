"""Where each remote participant goes on the screen.

One remote fills the screen, two sit side by side, up to four in 2x2, up to
nine in 3x3; beyond nine the most recently active nine are shown. Each picture
keeps its aspect ratio inside its tile (letterboxed).

>>> tiles = tile_rects(3, Rect(0, 0, 1920, 1040))  # 2x2 grid, three used
>>> tiles[0]
Rect(x=0, y=0, w=960, h=520)
>>> fit(1280, 720, tiles[0])  # the picture's rectangle in it
Rect(x=18, y=0, w=924, h=520)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_TILES = 9


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
