"""Pixel formats of display outputs: conversions, blank canvases, PNGs.

Outputs take ``bgra`` (XRGB8888 in memory order: B, G, R, X; the usual 32-bit
framebuffer and DRM format) or ``rgb565le`` (16-bit framebuffers).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

PIXEL_FORMATS = ("bgra", "rgb565le")


def rgb_to(rgb: np.ndarray, pixel_format: str) -> np.ndarray:
    """An (h, w, 3) RGB image in an output pixel format, pixel for pixel
    (swscale would filter small images such as text)."""
    r, g, b = (rgb[..., i].astype(np.uint16) for i in range(3))
    if pixel_format == "rgb565le":
        return ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3)
    x = np.full(rgb.shape[:2], 255, np.uint8)
    return np.stack([b.astype(np.uint8), g.astype(np.uint8), r.astype(np.uint8), x], axis=-1)


def to_rgb(image: np.ndarray, pixel_format: str) -> np.ndarray:
    """An image in an output pixel format back as (h, w, 3) RGB (for PNGs and tests)."""
    if pixel_format == "bgra":
        return image[..., 2::-1].copy()
    r = (image >> 11) & 0x1F
    g = (image >> 5) & 0x3F
    b = image & 0x1F
    return np.stack([(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)], axis=-1).astype(np.uint8)


def blank(width: int, height: int, pixel_format: str) -> np.ndarray:
    if pixel_format == "bgra":
        return np.zeros((height, width, 4), np.uint8)
    return np.zeros((height, width), np.uint16)


def png_bytes(image: np.ndarray, pixel_format: str) -> bytes:
    """An image in an output pixel format as a PNG file."""
    buffer = io.BytesIO()
    Image.fromarray(to_rgb(image, pixel_format)).save(buffer, format="PNG")
    return buffer.getvalue()
