"""The camera hardware, faked at its boundary for picamera2's real classes.

libcamera and kms++ exist only on a Pi, so they are stubbed in ``sys.modules``
before picamera2 is imported; picamera2's own ``Output`` and ``H264Encoder``
classes are then the real ones. :class:`FakePicamera2` stands in for the
sensor (the stamped test pattern) and for the V4L2 H.264 device (libx264): it
honours the real encoder's keyframe counters exactly as ``V4L2Encoder._encode``
does and hands each frame to the real ``Encoder.outputframe``.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from typing import Any

import numpy as np

from appliance.media.encoder import EncoderSettings, H264Encoder
from appliance.testing.testpattern import Stamp, TestPattern


class _Anything:
    """Whatever libcamera/pykms attribute picamera2 touches at import time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Anything:
        return _Anything()

    def __getattr__(self, name: str) -> _Anything:
        return _Anything()

    def __or__(self, other: Any) -> _Anything:
        return self

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (object,)


def _stub_attribute(attribute: str) -> _Anything:
    if attribute.startswith("__"):  # __file__, __path__, ...: a stub has none
        raise AttributeError(attribute)
    return _Anything()


def install_stubs() -> None:
    for name in ("libcamera", "pykms"):
        try:
            __import__(name)
        except ImportError:
            module = types.ModuleType(name)
            module.__getattr__ = _stub_attribute  # type: ignore[method-assign]
            sys.modules[name] = module


install_stubs()


class FakePicamera2:
    """The subset of ``Picamera2`` that :class:`appliance.media.picamera.PiCameraSource` uses."""

    def __init__(self) -> None:
        self.size = (1280, 720)
        self.fps = 30
        self.frame_number = 0
        self.forced_keyframes: list[int] = []  # frame numbers the encoder was asked to make IDR
        self.closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pattern: TestPattern | None = None
        self._next = 0.0

    def create_video_configuration(self, main: dict[str, Any], controls: dict[str, Any]) -> dict[str, Any]:
        return {"main": main, "controls": controls}

    def configure(self, config: dict[str, Any]) -> None:
        assert config["main"]["format"] == "YUV420"
        self.size = config["main"]["size"]
        self.fps = config["controls"]["FrameRate"]
        self._pattern = TestPattern(*self.size)

    # -- the sensor ---------------------------------------------------------

    def _next_picture(self) -> Any:
        """Waits for the next sensor frame and renders it."""
        assert self._pattern is not None
        now = time.monotonic()
        self._next = max(self._next + 1 / self.fps, now) if self._next else now
        time.sleep(max(0.0, self._next - now))
        picture = self._pattern.render(Stamp(self.frame_number, int(time.time() * 1000)))
        self.frame_number += 1
        return picture

    def start(self) -> None:
        pass

    def capture_array(self, name: str = "main") -> np.ndarray:
        assert name == "main"
        return self._next_picture().to_ndarray()

    def stop(self) -> None:
        pass

    # -- the V4L2 encoder device ----------------------------------------------

    def start_recording(self, encoder: Any, output: Any) -> None:
        encoder.output = output  # as Picamera2.start_encoder does
        encoder.width, encoder.height = self.size
        self._thread = threading.Thread(target=self._hardware_encoder, args=(encoder,), daemon=True)
        self._thread.start()

    def _hardware_encoder(self, encoder: Any) -> None:
        assert encoder.profile == "constrained baseline" and encoder.repeat
        x264 = H264Encoder(EncoderSettings(*self.size, fps=self.fps, bitrate=encoder.bitrate, gop=encoder.iperiod))
        while not self._stop.is_set():
            picture = self._next_picture()
            picture.pts = self.frame_number * 3000
            force = encoder._key_frames_requested > encoder._key_frames_generated
            if force:
                encoder._key_frames_generated += 1
                self.forced_keyframes.append(self.frame_number - 1)
            for packet in x264.encode(picture, force):
                encoder.outputframe(bytes(packet), packet.is_keyframe, timestamp=time.monotonic_ns() // 1000)

    def stop_recording(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def close(self) -> None:
        self.closed = True
