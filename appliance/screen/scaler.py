"""Scales a decoded picture straight into a region of the canvas (swscale).

PyAV's reformatter returns every scaled picture as a new frame: at 1080p a
tile's 2 MB buffer, which glibc maps afresh (the daemon's 128 KiB mmap
threshold, :mod:`appliance.app.memory`) and the kernel faults in and zeroes
page by page, and which then has to be copied onto the canvas. Measured on
the benchmark machine, a 1280x720 picture into a 944x531 tile: 2.2-2.5 ms of
CPU that way, 0.92 ms with swscale writing the canvas's own rows, the same
pixels (docs/performance.md). So :class:`Scaler` calls swscale's
``sws_getCachedContext`` and ``sws_scale`` (FFmpeg's long-stable API)
through ctypes, in the very libswscale PyAV loaded, with the picture's
colour matrix and range as PyAV would apply them.

swscale's SIMD code writes rows in whole blocks of pixels, up to 7 pixels
past a row's end here (a frame's rows have padding for it; a region of the
canvas has its neighbours there). So the canvas has :data:`OVERRUN` pixels of
slack after its last column (:func:`padded`), and the scaler puts back what
it overwrote right of the region.

Example, a grey picture into the middle of a small canvas:

>>> import av, numpy as np
>>> canvas = padded(160, 90, "bgra")
>>> grey = av.VideoFrame.from_ndarray(np.full((72, 128, 3), 200, np.uint8), format="rgb24")
>>> scaler = Scaler()
>>> scaler.scale(grey.reformat(format="yuv420p"), canvas[9:81], 16, 128, "bgra")
>>> canvas[45, 80].tolist(), canvas[45, 150].tolist()
([200, 200, 200, 255], [0, 0, 0, 0])
"""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

import av.video.reformatter  # noqa: F401  # maps PyAV's libswscale and libavutil into the process
import numpy as np

from .pixels import blank

SWS_BILINEAR = 2  # libswscale/swscale.h
SWS_AREA = 0x20
SWS_CS_DEFAULT = 5  # ITU-R BT.601
AVCOL_RANGE_JPEG = 2  # libavutil/pixfmt.h: full range
UNITY = 1 << 16  # sws_setColorspaceDetails' contrast and saturation of 1.0
OVERRUN = 32  # pixels of slack after a canvas row, for swscale's overrun (7 measured)


def _mapped(*names: str) -> list[ctypes.CDLL]:
    """The libraries PyAV itself uses, by name (dlopen of a loaded path returns it, never a second copy)."""
    maps = Path("/proc/self/maps").read_text()
    libraries = []
    for name in names:
        at = maps.find(f"/{name}")  # a wheel's copy has a hash in its name: libswscale-88e9f973.so.9
        if at < 0:
            raise ImportError(f"PyAV's {name} is not mapped in this process")
        line = maps[maps.rfind("\n", 0, at) + 1 : maps.find("\n", at)]
        libraries.append(ctypes.CDLL(line[line.index("/") :]))  # a line's path starts at its first slash
    return libraries


_sws, _avutil = _mapped("libswscale", "libavutil")
_int4 = ctypes.c_int * 4
_pointers4 = ctypes.c_void_p * 4
_avutil.av_get_pix_fmt.argtypes = [ctypes.c_char_p]
_avutil.av_get_pix_fmt.restype = ctypes.c_int
_sws.sws_getCachedContext.argtypes = [ctypes.c_void_p] + [ctypes.c_int] * 7 + [ctypes.c_void_p] * 3
_sws.sws_getCachedContext.restype = ctypes.c_void_p
_sws.sws_getCoefficients.argtypes = [ctypes.c_int]
_sws.sws_getCoefficients.restype = ctypes.POINTER(ctypes.c_int)
_sws.sws_setColorspaceDetails.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int,
                                          ctypes.POINTER(ctypes.c_int)] + [ctypes.c_int] * 4
_sws.sws_scale.argtypes = [ctypes.c_void_p, _pointers4, _int4, ctypes.c_int, ctypes.c_int, _pointers4, _int4]
_sws.sws_freeContext.argtypes = [ctypes.c_void_p]


def padded(width: int, height: int, pixel_format: str) -> np.ndarray:
    """A blank canvas ``width`` wide and :data:`OVERRUN` pixels more: its
    picture is ``[:, :width]``, the rest is slack for swscale."""
    return blank(width + OVERRUN, height, pixel_format)


@cache
def _pixel_format(name: str) -> int:
    number = _avutil.av_get_pix_fmt(name.encode())
    if number < 0:
        raise ValueError(f"swscale knows no pixel format {name!r}")
    return number


class Scaler:
    """One swscale context, kept for a tile's life (set up again only when
    the picture's size, format or colours change). Freed when the last
    reference goes: the screen's thread may be scaling with it while the
    event loop takes the tile off the screen."""

    def __init__(self) -> None:
        self._context: int | None = None
        self._colours: tuple[int, int] | None = None

    def scale(self, frame: av.VideoFrame, rows: np.ndarray, x: int, width: int, pixel_format: str,
              area: bool = False) -> None:
        """Scales ``frame`` to fill columns ``x`` to ``x + width`` of ``rows``
        (whole rows of a :func:`padded` canvas, in ``pixel_format``).
        ``area`` averages (for text that must shrink); otherwise bilinear."""
        height, end = rows.shape[0], x + width
        if not (height and width):
            return
        if end + OVERRUN > rows.shape[1] or rows.strides[1] != rows.itemsize * (rows.shape[2] if rows.ndim == 3 else 1):
            raise ValueError(f"the region needs contiguous pixels and {OVERRUN} more after it in its rows")
        context = _sws.sws_getCachedContext(
            self._context, frame.width, frame.height, _pixel_format(frame.format.name), width, height,
            _pixel_format(pixel_format), SWS_AREA if area else SWS_BILINEAR, None, None, None)
        if not context:  # the old context is freed already
            self._context = None
            raise ValueError(f"swscale cannot scale {frame.format.name} {frame.width}x{frame.height} "
                             f"to {pixel_format} {width}x{height}")
        if context != self._context:
            self._context, self._colours = context, None
        colours = (frame.colorspace, frame.color_range)
        if colours != self._colours:
            # As PyAV's reformat does: the picture's own matrix (BT.601 when
            # unspecified) and range, to full-range RGB.
            full = frame.color_range == AVCOL_RANGE_JPEG or frame.format.name.startswith("yuvj")
            _sws.sws_setColorspaceDetails(context, _sws.sws_getCoefficients(frame.colorspace), int(full),
                                          _sws.sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, UNITY, UNITY)
            self._colours = colours
        beyond = rows[:, end : end + OVERRUN]
        kept = beyond.copy()
        planes = frame.planes
        _sws.sws_scale(context, _pointers4(*(plane.buffer_ptr for plane in planes)),
                       _int4(*(plane.line_size for plane in planes)), 0, frame.height,
                       _pointers4(rows[:, x:].ctypes.data), _int4(rows.strides[0]))
        beyond[:] = kept

    def __del__(self) -> None:
        if self._context:
            _sws.sws_freeContext(self._context)
