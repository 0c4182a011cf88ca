"""Media sources and sinks, and the aiortc tracks that carry them.

A video source yields already-encoded H.264 (``av.Packet``, Annex-B, SPS/PPS
before every IDR, ``pts``/``time_base`` set) so aiortc only packetizes it; an
audio source yields 48 kHz PCM ``av.AudioFrame`` (aiortc encodes Opus). Sinks
are plain callables that take a decoded frame.

Sources outlive tracks: the engine wraps them in a new track for every peer
connection (after a reconnect, for instance) and never closes them; the
application that opened a source closes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import av
import numpy as np
from aiortc import MediaStreamTrack


@runtime_checkable
class EncodedVideoSource(Protocol):
    async def recv(self) -> av.Packet: ...

    def request_keyframe(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class AudioSource(Protocol):
    async def recv(self) -> av.AudioFrame: ...

    def close(self) -> None: ...


VideoSink = Callable[[av.VideoFrame], None]
AudioSink = Callable[[av.AudioFrame], None]


class SourceTrack(MediaStreamTrack):
    """An aiortc track reading from a source; counts what it hands over."""

    def __init__(self, kind: str, source: EncodedVideoSource | AudioSource) -> None:
        super().__init__()
        self.kind = kind
        self.source = source
        self.frames = 0

    async def recv(self) -> av.Packet | av.AudioFrame:  # type: ignore[override]
        item = await self.source.recv()
        self.frames += 1
        if isinstance(item, av.AudioFrame) and item.layout.name == "mono":
            return mono_to_stereo(item)
        return item


def mono_to_stereo(frame: av.AudioFrame) -> av.AudioFrame:
    """Both channels the same as the mono one, at the same level.

    aiortc's Opus encoder would upmix mono itself with libswresample's -3 dB
    centre mix, and the far end would hear the room 3 dB quieter.
    """
    samples = frame.to_ndarray().reshape(-1)
    both = np.stack([samples, samples]) if frame.format.is_planar else np.repeat(samples, 2)[None, :]
    stereo = av.AudioFrame.from_ndarray(both, format=frame.format.name, layout="stereo")
    stereo.sample_rate, stereo.pts = frame.sample_rate, frame.pts
    if frame.time_base is not None:
        stereo.time_base = frame.time_base
    return stereo

