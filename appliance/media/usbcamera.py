r"""USB (UVC) cameras through V4L2 and PyAV.

A camera that delivers H.264 itself (``input_format = "h264"``) is passed
through untouched; it cannot be asked for a keyframe, so a new viewer waits for
the camera's next one (set a short GOP on the camera if it has the control).
Any other format (MJPEG, YUYV) is decoded, scaled to the configured size and
encoded by the project's :class:`~appliance.media.encoder.H264Encoder`, which honours
keyframe requests. An unplugged camera is reported once and reopened when it
returns.

Example, with FFmpeg's test source standing in for ``/dev/video0``:

>>> import asyncio
>>> from appliance.media import EncoderSettings
>>> async def first_packet():
...     camera = UsbCameraSource(EncoderSettings(320, 180), device="testsrc2=size=320x240:rate=30",
...                              container_format="lavfi")
...     try:
...         return await camera.recv()
...     finally:
...         camera.close()
>>> packet = asyncio.run(first_packet())
>>> packet.is_keyframe, bytes(packet)[:4]
(True, b'\x00\x00\x00\x01')
"""

from __future__ import annotations

import logging
import time

import av
from av.video.reformatter import VideoReformatter

from .capture import CaptureSource
from .encoder import EncoderSettings, H264Encoder

log = logging.getLogger(__name__)


class UsbCameraSource(CaptureSource):
    """An encoded-video source from a V4L2 device (see the module docs).

    ``container_format`` and ``device`` go to ``av.open`` (``v4l2`` and a
    ``/dev/video*`` path for a real camera).
    """

    def __init__(
        self,
        settings: EncoderSettings = EncoderSettings(),
        device: str = "/dev/video0",
        input_format: str | None = None,
        container_format: str = "v4l2",
        queue_packets: int = 8,
        reopen_interval: float = 1.0,
    ) -> None:
        super().__init__(queue_packets)
        self.settings = settings
        self.device = device
        self.input_format = input_format
        self.passthrough: bool | None = None  # known once the camera is open
        self.available = False
        self._container_format = container_format
        self._reopen_interval = reopen_interval

    def _begin(self) -> None:
        self._run_thread(self._capture, "usb-camera")

    def _open(self) -> av.container.InputContainer:
        s = self.settings
        options = {"video_size": f"{s.width}x{s.height}", "framerate": str(s.fps)}
        if self.input_format:
            options["input_format"] = self.input_format
        return av.open(self.device, format=self._container_format, options=options)

    def _capture(self) -> None:
        reported = False
        while not self._stop.is_set():
            try:
                container = self._open()
            except (OSError, av.FFmpegError) as exc:
                if not reported:
                    log.warning("camera %s cannot be opened (%s); retrying every %g s", self.device, exc, self._reopen_interval)
                    reported = True
                self._stop.wait(self._reopen_interval)
                continue
            if reported:
                log.warning("camera %s is back", self.device)
                reported = False
            self.available = True
            try:
                self._read(container)
                if not self._stop.is_set():
                    log.warning("camera %s stopped delivering frames; reopening", self.device)
            except (OSError, av.FFmpegError) as exc:
                log.warning("camera %s is gone (%s); retrying every %g s", self.device, exc, self._reopen_interval)
                reported = True
            finally:
                self.available = False
                container.close()
            self._stop.wait(self._reopen_interval)

    def _read(self, container: av.container.InputContainer) -> None:
        s = self.settings
        video = container.streams.video[0]
        self.passthrough = video.codec_context.name == "h264"
        encoder = None if self.passthrough else H264Encoder(s)
        # One scaler for the stream: frame.reformat() would set a swscale context up for every frame.
        scaler = VideoReformatter()
        if self.passthrough:
            self.stream.force_key_frame = self._cannot_force_keyframe
        log.info("camera %s: %s, %s", self.device, video.codec_context.name,
                 "passed through" if self.passthrough else f"encoded to H.264 {s.width}x{s.height}")
        for packet in container.demux(video):
            if self._stop.is_set():
                return
            timestamp_us = time.monotonic_ns() // 1000
            if encoder is None:
                if packet.size:
                    self.stream.put(bytes(packet), packet.is_keyframe, timestamp_us)
                continue
            for frame in packet.decode():
                scaled = scaler.reformat(frame, s.width, s.height, "yuv420p")
                self.stream.encode(encoder, scaled, timestamp_us)

    def _cannot_force_keyframe(self) -> None:
        if self.stream.keyframe_requests == 1:
            log.info("camera %s encodes H.264 itself and cannot be asked for keyframes; "
                     "new viewers wait for its next one", self.device)
