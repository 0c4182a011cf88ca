"""Display outputs: KMS/DRM, the Linux framebuffer, a desktop window, headless.

A Pi OS Lite appliance has no desktop; the picture goes straight to the
display. With kms++ (``python3-kms++`` on Pi OS, as picamera2's DRM preview
uses) the output takes the connector's preferred mode and flips between two
XRGB8888 buffers with atomic commits. Otherwise ``/dev/fb0`` (the KMS
driver's fbdev emulation): its geometry comes from the fbdev ioctls (or is
given, for a regular file standing in for the device); rows honour the
driver's stride; RGB565 and XRGB8888 are supported. On a development machine
with a desktop, a pygame window; with nothing, a headless output that keeps
the last frame for screenshots. ``open_output("auto")`` picks in that order.

Example, with the output that only keeps the last frame:

>>> from appliance.screen import Compositor
>>> output = HeadlessOutput(640, 360)
>>> screen = Compositor(output.width, output.height, output.pixel_format)
>>> output.show(screen.compose())
>>> output.frames
1
"""

from __future__ import annotations

import fcntl
import importlib
import logging
import mmap
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from .pixels import png_bytes, to_rgb

log = logging.getLogger(__name__)
OUTPUT_KINDS = ("auto", "kms", "framebuffer", "window", "headless")

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


class KmsOutput:
    """Shows frames on a DRM connector through kms++ (``pykms``), double-buffered.

    ``connector`` is a kms++ connector name (``HDMI-A-1``); empty takes the
    first connected one.
    """

    pixel_format = "bgra"  # DRM XR24: B, G, R, X in memory

    def __init__(self, connector: str = "") -> None:
        pykms = importlib.import_module("pykms")
        self._pykms = pykms
        self._card = pykms.Card.open_modesetting_card()
        resources = pykms.ResourceManager(self._card)
        self._connector = resources.reserve_connector(connector)
        self._crtc = resources.reserve_crtc(self._connector)
        self._plane = resources.reserve_generic_plane(self._crtc)
        mode = self._connector.get_default_mode()
        self.width, self.height = mode.hdisplay, mode.vdisplay
        self._buffers = [self._buffer() for _ in range(2)]
        self._back = 0
        request = pykms.AtomicReq(self._card)
        request.add_connector(self._connector, self._crtc)
        request.add_crtc(self._crtc, mode.to_blob(self._card))
        request.add_plane(self._plane, self._buffers[1][0], self._crtc, dst=(0, 0, self.width, self.height))
        request.commit_sync(allow_modeset=True)

    def _buffer(self) -> tuple[Any, mmap.mmap, np.ndarray]:
        fb = self._pykms.DumbFramebuffer(self._card, self.width, self.height, "XR24")
        stride = fb.stride(0)
        memory = mmap.mmap(fb.fd(0), stride * self.height, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        rows = np.frombuffer(memory, np.uint8).reshape(self.height, stride)
        return fb, memory, rows[:, : self.width * 4].reshape(self.height, self.width, 4)

    def show(self, image: np.ndarray) -> None:
        fb, _, pixels = self._buffers[self._back]
        pixels[:] = image
        request = self._pykms.AtomicReq(self._card)
        request.add_plane(self._plane, fb, self._crtc, dst=(0, 0, self.width, self.height))
        request.commit_sync()
        self._back ^= 1

    def close(self) -> None:
        memories = [memory for _, memory, _ in self._buffers]
        self._buffers = []  # the pixel views go first: an mmap with views cannot close
        for memory in memories:
            memory.close()


class WindowOutput:
    """A desktop window (pygame), for development on a machine with a display."""

    def __init__(self, width: int = 1280, height: int = 720, pixel_format: str = "bgra") -> None:
        self._pygame = importlib.import_module("pygame")
        self._pygame.display.init()
        self.width, self.height, self.pixel_format = width, height, pixel_format
        self._window = self._pygame.display.set_mode((width, height))
        self._pygame.display.set_caption("appliance")

    def show(self, image: np.ndarray) -> None:
        self._pygame.event.pump()  # keeps the window responsive
        rgb = to_rgb(image, self.pixel_format)
        self._window.blit(self._pygame.image.frombuffer(rgb.tobytes(), (self.width, self.height), "RGB"), (0, 0))
        self._pygame.display.flip()

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        return tuple(self._window.get_at((x, y)))[:3]  # type: ignore[return-value]

    def close(self) -> None:
        self._pygame.display.quit()


def open_output(kind: str = "auto", width: int = 1920, height: int = 1080, framebuffer: str = "/dev/fb0",
                connector: str = "") -> KmsOutput | FramebufferOutput | WindowOutput | HeadlessOutput:
    """The configured output; ``auto`` tries KMS, the framebuffer, a window, then headless."""
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"output must be one of {', '.join(OUTPUT_KINDS)}, not {kind!r}")
    if kind == "kms":
        return KmsOutput(connector)
    if kind == "framebuffer":
        return FramebufferOutput(framebuffer)
    if kind == "window":
        return WindowOutput(width, height)
    if kind == "headless":
        return HeadlessOutput(width, height)
    for name, attempt in (
        ("kms", lambda: KmsOutput(connector)),
        ("framebuffer", lambda: FramebufferOutput(framebuffer)),
        ("window", lambda: WindowOutput(width, height) if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") else None),
    ):
        try:
            output = attempt()
        except Exception as exc:  # kms++, fbdev and SDL each fail in their own way
            log.info("no %s output: %s", name, exc)
            continue
        if output is not None:
            log.info("display output: %s %dx%d", name, output.width, output.height)
            return output
    log.info("display output: headless %dx%d", width, height)
    return HeadlessOutput(width, height)
