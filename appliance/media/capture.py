"""The common half of every camera source: encoded packets from a capture
thread to asyncio, and keyframe requests back.

:class:`CaptureSource` is the base of the Pi and USB camera sources: it owns
the capture thread and the :class:`CameraStream`.

A camera's thread either has H.264 already (a hardware encoder, a UVC camera
that encodes) and calls :meth:`CameraStream.put`, or has raw frames and calls
:meth:`CameraStream.encode` with the project's encoder, which makes the next
frame an IDR when one was asked for. When the network side falls behind, the
queue drops what it holds, asks for an IDR and hands nothing over until one
arrives (P-frames after a gap decode to garbage).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from fractions import Fraction

import av

from .encoder import VIDEO_TIME_BASE, H264Encoder
from .handoff import Handoff

MICROSECONDS = Fraction(1, 1_000_000)


def _keyframe_after_drop(packet: av.Packet, after_drop: bool) -> bool:
    return packet.is_keyframe or not after_drop


class CameraStream:
    """``force_key_frame`` is the encoder's own IDR request (a hardware
    encoder's); without it :meth:`encode` makes the IDR itself."""

    def __init__(self, queue_packets: int = 8, force_key_frame: Callable[[], None] | None = None) -> None:
        self.keyframe_requests = 0
        self.force_key_frame = force_key_frame
        self._queue_packets = queue_packets
        self._handoff: Handoff[av.Packet] | None = None
        self._want_keyframe = threading.Event()
        self._want_keyframe.set()  # the first frame the encoder makes

    @property
    def started(self) -> bool:
        return self._handoff is not None

    @property
    def dropped(self) -> int:
        return self._handoff.dropped if self._handoff is not None else 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handoff = Handoff(loop, self._queue_packets, on_drop=self.request_keyframe, accept=_keyframe_after_drop)

    def request_keyframe(self) -> None:
        self.keyframe_requests += 1
        if self.force_key_frame is not None:
            self.force_key_frame()
        else:
            self._want_keyframe.set()

    def put(self, data: bytes, keyframe: bool, timestamp_us: int | None = None) -> None:
        """From the capture thread: one encoded frame (Annex-B H.264)."""
        assert self._handoff is not None
        packet = av.Packet(data)
        packet.pts = time.monotonic_ns() // 1000 if timestamp_us is None else int(timestamp_us)
        packet.time_base = MICROSECONDS
        packet.is_keyframe = bool(keyframe)
        self._handoff.put(packet)

    def encode(self, encoder: H264Encoder, frame: av.VideoFrame, timestamp_us: int) -> None:
        """From the capture thread: encodes a raw frame, an IDR if one was asked for."""
        frame.pts = timestamp_us * VIDEO_TIME_BASE.denominator // 1_000_000
        frame.time_base = VIDEO_TIME_BASE
        keyframe = self._want_keyframe.is_set()
        self._want_keyframe.clear()
        for packet in encoder.encode(frame, keyframe):
            self.put(bytes(packet), packet.is_keyframe, timestamp_us)

    async def get(self) -> av.Packet:
        assert self._handoff is not None
        return await self._handoff.get()


class CaptureSource:
    """An encoded-video source fed by a capture thread; subclasses implement
    :meth:`_begin` (start capturing, on the event loop) and :meth:`_end`."""

    def __init__(self, queue_packets: int = 8) -> None:
        self.closed = False
        self.stream = CameraStream(queue_packets)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def keyframe_requests(self) -> int:
        return self.stream.keyframe_requests

    @property
    def dropped(self) -> int:
        """Packets dropped because the network side fell behind."""
        return self.stream.dropped

    def start(self) -> None:
        """Starts capturing; ``recv`` does it on first use."""
        if not self.stream.started:
            self.stream.start(asyncio.get_running_loop())
            self._begin()

    def request_keyframe(self) -> None:
        self.stream.request_keyframe()

    async def recv(self) -> av.Packet:
        if self.closed:
            raise ConnectionError("camera source is closed")
        self.start()
        return await self.stream.get()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self.stream.started:
            self._end()

    def _run_thread(self, target: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def _begin(self) -> None:
        raise NotImplementedError

    def _end(self) -> None:
        """Releases the device after the thread has stopped."""
