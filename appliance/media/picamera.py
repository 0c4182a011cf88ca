"""The Pi camera through picamera2, encoded to H.264 without the CPU where possible.

On a Pi 4 and earlier, picamera2's ``H264Encoder`` drives the V4L2 hardware
encoder (constrained baseline, SPS/PPS with every IDR); each encoded frame
reaches :class:`PacketOutput` on the encoder's thread and goes to asyncio as an
``av.Packet``. Keyframe requests call ``force_key_frame()``. A Pi 5 has no
hardware H.264 encoder (picamera2's libav fallback crashes on
``force_key_frame()`` with the PyAV aiortc needs), so there the camera gives
YUV420 frames and the project's own :class:`~appliance.media.encoder.H264Encoder`
encodes them. ``encoder = "auto"`` picks by board.

This module imports picamera2, which on a Pi comes from apt
(``python3-picamera2``).

Which encoder ``encoder = "auto"`` takes is decided in :mod:`~appliance.media.board`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import av
from picamera2 import Picamera2
from picamera2.encoders.h264_encoder import H264Encoder as HardwareH264Encoder
from picamera2.outputs import Output

from .board import choose_encoder
from .capture import CameraStream, CaptureSource
from .encoder import EncoderSettings, H264Encoder

log = logging.getLogger(__name__)

class PacketOutput(Output):  # type: ignore[misc]
    """A picamera2 output handing each encoded frame to a :class:`CameraStream`.

    Called on the encoder's thread; never blocks it.
    """

    def __init__(self, stream: CameraStream) -> None:
        super().__init__()
        self._stream = stream

    def outputframe(
        self,
        frame: Any,
        keyframe: bool = True,
        timestamp: int | None = None,
        packet: Any = None,
        audio: bool = False,
    ) -> None:
        if not audio and frame is not None:
            self._stream.put(bytes(frame), keyframe, timestamp)


class PiCameraSource(CaptureSource):
    """An encoded-video source from the Pi camera (see the module docs).

    ``camera`` is a ``Picamera2`` (one is opened on first use if not given).
    """

    def __init__(
        self,
        settings: EncoderSettings = EncoderSettings(),
        encoder: str = "auto",
        camera: Picamera2 | None = None,
        queue_packets: int = 8,
    ) -> None:
        super().__init__(queue_packets)
        self.settings = settings
        self.mode = choose_encoder(encoder)
        self._camera = camera
        self._hardware: HardwareH264Encoder | None = None

    def _begin(self) -> None:
        camera = self._camera = self._camera or Picamera2()
        s = self.settings
        camera.configure(
            camera.create_video_configuration(
                main={"size": (s.width, s.height), "format": "YUV420"},
                controls={"FrameRate": s.fps},
            )
        )
        if self.mode == "hardware":
            self._hardware = HardwareH264Encoder(
                bitrate=s.bitrate, repeat=True, iperiod=s.gop, framerate=s.fps, profile="constrained baseline"
            )
            self.stream.force_key_frame = self._hardware.force_key_frame
            camera.start_recording(self._hardware, PacketOutput(self.stream))
        else:
            camera.start()
            self._run_thread(lambda: self._encode_frames(camera), "camera-encoder")
        log.info("camera started: %dx%d@%d, %s H.264", s.width, s.height, s.fps, self.mode)

    def _end(self) -> None:
        camera = self._camera
        if camera is not None:
            if self._hardware is not None:
                camera.stop_recording()
            else:
                camera.stop()
            camera.close()

    def _encode_frames(self, camera: Picamera2) -> None:
        """The software path (Pi 5): YUV420 from the camera, our libx264 encoder."""
        s = self.settings
        encoder = H264Encoder(s)
        while not self._stop.is_set():
            planes = camera.capture_array("main")
            timestamp_us = time.monotonic_ns() // 1000
            frame = av.VideoFrame.from_ndarray(planes[: s.height * 3 // 2, : s.width], format="yuv420p")
            self.stream.encode(encoder, frame, timestamp_us)
