"""Display outputs: the Linux framebuffer, and a headless output.

A Pi OS Lite appliance has no desktop; the picture goes to ``/dev/fb0`` (the
KMS driver's fbdev emulation). Its geometry comes from the fbdev ioctls (or is
given, for a regular file standing in for the device); rows honour the
driver's stride; RGB565 and XRGB8888 are supported. The headless output keeps
the last frame for screenshots.

Example::

    output = FramebufferOutput("/dev/fb0")
    screen = Compositor(output.width, output.height, output.pixel_format)
    await screen.run(output)
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from dataclasses import dataclass

import numpy as np

from .pixels import png_bytes

FBIOGET_VSCREENINFO = 0x4600
FBIOGET_FSCREENINFO = 0x4602
# struct fb_var_screeninfo starts with xres, yres, xres_virtual, yres_virtual,
# xoffset, yoffset, bits_per_pixel (__u32 each); 160 bytes in all.
_VAR = struct.Struct("=7I")
_VAR_SIZE = 160
# struct fb_fix_screeninfo: char id[16]; unsigned long smem_start; __u32 smem_len,
# type, type_aux, visual; __u16 xpanstep, ypanstep, ywrapstep; __u32 line_length.
_FIX = struct.Struct("@16sLIIIIHHHI")
_FIX_SIZE = 128


@dataclass(frozen=True)
class FramebufferGeometry:
    width: int
    height: int
    bits_per_pixel: int
    line_length: int  # bytes per row, padding included

    @property
    def pixel_format(self) -> str:
        formats = {16: "rgb565le", 32: "bgra"}
        if self.bits_per_pixel not in formats:
            raise ValueError(f"framebuffer has {self.bits_per_pixel} bits per pixel; 16 or 32 are supported")
        return formats[self.bits_per_pixel]


def read_geometry(fd: int) -> FramebufferGeometry:
    """The geometry of an open framebuffer device, from its ioctls."""
    var = fcntl.ioctl(fd, FBIOGET_VSCREENINFO, bytes(_VAR_SIZE))
    fix = fcntl.ioctl(fd, FBIOGET_FSCREENINFO, bytes(_FIX_SIZE))
    xres, yres, _, _, _, _, bits = _VAR.unpack_from(var)
    line_length = _FIX.unpack_from(fix)[-1]
    return FramebufferGeometry(xres, yres, bits, line_length)


class FramebufferOutput:
    """Writes composed frames into a framebuffer device (memory-mapped)."""

    def __init__(self, path: str = "/dev/fb0", geometry: FramebufferGeometry | None = None) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR)
        try:
            self.geometry = geometry or read_geometry(self._fd)
            self.width, self.height = self.geometry.width, self.geometry.height
            self.pixel_format = self.geometry.pixel_format
            self._map = mmap.mmap(self._fd, self.geometry.line_length * self.height)
        except BaseException:
            os.close(self._fd)
            raise
        rows = np.frombuffer(self._map, np.uint8).reshape(self.height, self.geometry.line_length)
        visible = rows[:, : self.width * self.geometry.bits_per_pixel // 8]
        if self.pixel_format == "bgra":
            self._pixels = visible.reshape(self.height, self.width, 4)
        else:
            self._pixels = visible.view(np.uint16)

    def show(self, image: np.ndarray) -> None:
        self._pixels[:] = image

    def close(self) -> None:
        del self._pixels
        self._map.close()
        os.close(self._fd)


class HeadlessOutput:
    """Keeps the last frame; for machines without a display, and screenshots."""

    def __init__(self, width: int = 1920, height: int = 1080, pixel_format: str = "bgra") -> None:
        self.width, self.height, self.pixel_format = width, height, pixel_format
        self.last_image: np.ndarray | None = None
        self.frames = 0

    def show(self, image: np.ndarray) -> None:
        self.last_image = image
        self.frames += 1

    def png(self) -> bytes:
        if self.last_image is None:
            raise ValueError("nothing has been shown yet")
        return png_bytes(self.last_image, self.pixel_format)

    def close(self) -> None:
        self.last_image = None
