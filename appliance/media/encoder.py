r"""The project's own H.264 encoder (PyAV libx264), for Pi 5 and PCs.

It produces what aiortc passes through unchanged and what every receiver can
start from: constrained baseline, Annex-B, SPS/PPS before every IDR, one packet
per frame with ``pts``/``time_base`` set, and an IDR whenever one is asked for.

>>> import av
>>> encoder = H264Encoder(EncoderSettings(width=320, height=180, fps=30))
>>> frame = av.VideoFrame(320, 180, "yuv420p")
>>> frame.pts = 0
>>> packets = encoder.encode(frame, keyframe=True)
>>> packets[0].is_keyframe, bytes(packets[0])[:4]
(True, b'\x00\x00\x00\x01')
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import av
from av.video.frame import PictureType

VIDEO_TIME_BASE = Fraction(1, 90000)


@dataclass(frozen=True)
class EncoderSettings:
    """``gop`` is in frames; ``preset`` is libx264's (ultrafast suits a Pi 5)."""

    width: int = 1280
    height: int = 720
    fps: int = 30
    bitrate: int = 2_000_000
    gop: int = 60
    preset: str = "ultrafast"


class H264Encoder:
    def __init__(self, settings: EncoderSettings = EncoderSettings()) -> None:
        self.settings = settings
        context = av.CodecContext.create("libx264", "w")
        context.width = settings.width
        context.height = settings.height
        context.pix_fmt = "yuv420p"
        context.time_base = VIDEO_TIME_BASE
        context.framerate = Fraction(settings.fps, 1)
        context.bit_rate = settings.bitrate
        context.options = {
            # x264's baseline is constrained baseline, the only H.264 aiortc offers.
            "profile": "baseline",
            "preset": settings.preset,
            "tune": "zerolatency",
            "forced-idr": "1",
            # A fixed GOP without scene cuts; SPS/PPS repeated before every IDR so
            # a receiver can start at any keyframe.
            "x264-params": (
                f"keyint={settings.gop}:min-keyint={settings.gop}:scenecut=0:repeat-headers=1"
            ),
        }
        context.open()
        self._context = context

    def encode(self, frame: av.VideoFrame, keyframe: bool = False) -> list[av.Packet]:
        """Encodes one frame (``pts`` in :data:`VIDEO_TIME_BASE`); an IDR if asked."""
        frame.pict_type = PictureType.I if keyframe else PictureType.NONE
        packets = self._context.encode(frame)
        for packet in packets:
            packet.time_base = VIDEO_TIME_BASE
        return packets
