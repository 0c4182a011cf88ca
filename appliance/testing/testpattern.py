"""The synthetic camera: a moving test pattern that carries its own timestamp.

Every frame stamps its frame number and capture time (wall clock, ms) into the
top of the picture as two rows of black/white blocks, the second the inverse of
the first so a reader can tell a clean read from a damaged one. A receiver, or
the composed screen, reads them back with :func:`read_stamp` to check which
frame it shows and how old it is.

Example:

>>> import asyncio
>>> from appliance.media import EncoderSettings
>>> read_stamp(TestPattern(320, 180).render(Stamp(42, 1234)))
Stamp(frame_number=42, capture_ms=1234)
>>> packet = asyncio.run(TestPatternSource(EncoderSettings(320, 180)).recv())
>>> packet.is_keyframe
True
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

import av
import numpy as np

from ..media.encoder import VIDEO_TIME_BASE, EncoderSettings, H264Encoder
from .pacing import Pacer

FRAME_BITS = 32
TIME_BITS = 48
BITS = FRAME_BITS + TIME_BITS
# Each of the two stamp rows is 1/45 of the picture high (16 lines at 720p).
STRIP_FRACTION = 1 / 45
BLACK, WHITE = 16, 235


@dataclass(frozen=True)
class Stamp:
    frame_number: int
    capture_ms: int

    def age_ms(self, now: float | None = None) -> float:
        """Milliseconds since capture, by the wall clock."""
        return (time.time() if now is None else now) * 1000 - self.capture_ms


def _bits(stamp: Stamp) -> np.ndarray:
    value = (stamp.frame_number % (1 << FRAME_BITS)) << TIME_BITS | (stamp.capture_ms % (1 << TIME_BITS))
    return np.array([(value >> (BITS - 1 - i)) & 1 for i in range(BITS)], dtype=bool)


def _strip_height(height: int) -> int:
    return max(4, round(height * STRIP_FRACTION))


def stamp_luma(luma: np.ndarray, stamp: Stamp) -> None:
    """Writes ``stamp`` into the top rows of a luma plane, in place."""
    height, width = luma.shape
    strip = _strip_height(height)
    edges = np.linspace(0, width, BITS + 1).astype(int)
    row = np.where(np.repeat(_bits(stamp), np.diff(edges)), WHITE, BLACK).astype(np.uint8)
    luma[:strip] = row
    luma[strip : 2 * strip] = (WHITE + BLACK) - row


def read_stamp(picture: av.VideoFrame | np.ndarray) -> Stamp | None:
    """Reads the stamp back from a frame or a luma/grey array, or None.

    Works on scaled copies of the pattern (a tile on the composed screen) as
    long as the array spans the pattern's full width and starts at its top.
    """
    luma = _luma(picture) if isinstance(picture, av.VideoFrame) else picture
    if luma.ndim == 3:  # RGB: green is close enough to luma for black/white blocks
        luma = luma[..., 1]
    height, width = luma.shape
    strip = _strip_height(height)
    if width < BITS * 2 or strip < 2:
        return None
    edges = np.linspace(0, width, BITS + 1)
    quarter = (edges[1] - edges[0]) / 4
    top = luma[strip // 4 : strip - strip // 4].astype(np.int32)
    bottom = luma[strip + strip // 4 : 2 * strip - strip // 4].astype(np.int32)
    threshold = (WHITE + BLACK) // 2
    bits, inverse = [], []
    for left, right in zip(edges[:-1], edges[1:]):
        columns = slice(int(left + quarter), max(int(left + quarter) + 1, int(right - quarter)))
        bits.append(top[:, columns].mean() > threshold)
        inverse.append(bottom[:, columns].mean() > threshold)
    if any(a == b for a, b in zip(bits, inverse)):
        return None
    value = 0
    for bit in bits:
        value = value << 1 | int(bit)
    return Stamp(value >> TIME_BITS, value & ((1 << TIME_BITS) - 1))


def _luma(frame: av.VideoFrame) -> np.ndarray:
    if frame.format.name in ("yuv420p", "yuvj420p"):
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        return rows[:, : frame.width]
    return frame.to_ndarray(format="gray")


class TestPattern:
    """Renders yuv420p frames: colour bars, a moving box and the stamp."""

    __test__ = False  # not a pytest test class

    def __init__(self, width: int, height: int) -> None:
        if width % 2 or height % 2:
            raise ValueError("the test pattern needs an even width and height")
        self.width, self.height = width, height
        bars = np.array(
            # (Y, U, V) of white, yellow, cyan, green, magenta, red, blue, grey
            [(180, 128, 128), (168, 44, 136), (145, 147, 44), (133, 63, 52),
             (63, 193, 204), (51, 109, 212), (28, 212, 120), (90, 128, 128)],
            dtype=np.uint8,
        )
        index = np.arange(width) * len(bars) // width
        self._y = np.repeat(bars[index, 0][None, :], height, axis=0)
        chroma = bars[index[::2]]
        self._u = np.repeat(chroma[None, :, 1], height // 2, axis=0)
        self._v = np.repeat(chroma[None, :, 2], height // 2, axis=0)
        self._box = max(16, height // 6)

    def render(self, stamp: Stamp) -> av.VideoFrame:
        y, u, v = self._y.copy(), self._u.copy(), self._v.copy()
        box, top = self._box, self.height // 3
        left = (stamp.frame_number * 8) % (self.width - box) & ~1
        y[top : top + box, left : left + box] = WHITE
        u[top // 2 : (top + box) // 2, left // 2 : (left + box) // 2] = 128
        v[top // 2 : (top + box) // 2, left // 2 : (left + box) // 2] = 128
        stamp_luma(y, stamp)
        strip = 2 * _strip_height(self.height)
        u[: (strip + 1) // 2] = 128
        v[: (strip + 1) // 2] = 128
        return av.VideoFrame.from_ndarray(np.concatenate([y, u.reshape(-1, self.width), v.reshape(-1, self.width)]), format="yuv420p")


class TestPatternSource:
    """An encoded-video source: the test pattern through :class:`H264Encoder`.

    Paced in real time at ``settings.fps``. Keyframe requests make the next
    frame an IDR.
    """

    __test__ = False

    def __init__(self, settings: EncoderSettings = EncoderSettings()) -> None:
        self.settings = settings
        self.frame_number = 0
        self.keyframe_requests = 0
        # Frame numbers of IDRs made on request (most recent last).
        self.requested_keyframes: deque[int] = deque(maxlen=64)
        self.closed = False
        self._pattern = TestPattern(settings.width, settings.height)
        self._encoder = H264Encoder(settings)
        self._want_keyframe = True
        self._requested = False
        self._pacer = Pacer(1 / settings.fps)
        self._start = time.monotonic()

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        self._want_keyframe = self._requested = True

    async def recv(self) -> av.Packet:
        while True:
            packets = await self._next_frame()
            if packets:  # zerolatency gives one packet per frame
                return packets[0]

    async def _next_frame(self) -> list[av.Packet]:
        if self.closed:
            raise ConnectionError("test pattern source is closed")
        await self._pacer.wait()
        stamp = Stamp(self.frame_number, int(time.time() * 1000))
        frame = self._pattern.render(stamp)
        frame.pts = int((time.monotonic() - self._start) * VIDEO_TIME_BASE.denominator)
        frame.time_base = VIDEO_TIME_BASE
        keyframe, self._want_keyframe = self._want_keyframe, False
        if self._requested:
            self.requested_keyframes.append(self.frame_number)
            self._requested = False
        self.frame_number += 1
        return await asyncio.to_thread(self._encoder.encode, frame, keyframe)

    def close(self) -> None:
        self.closed = True

