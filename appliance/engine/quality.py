"""Stream quality figures from aiortc's statistics, every few seconds.

Example (a link samples ``await pc.getStats()`` every few seconds):

>>> from aiortc.stats import RTCStatsReport
>>> meter = QualityMeter()
>>> quality = meter.sample(RTCStatsReport(), video_frames=0)
>>> quality.rtt_ms, quality.packet_loss, quality.jitter_ms
(None, 0.0, None)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCStatsReport,
    RTCTransportStats,
)

# RTP timestamp units per millisecond: aiortc reports jitter in them.
CLOCK_KHZ = {"audio": 48, "video": 90}


@dataclass(frozen=True)
class StreamQuality:
    """Video frames per second, kbit/s of all media, round-trip time (None
    where aiortc gives none, as on the receiving side), the fraction of
    packets lost in the last interval and the interarrival jitter (RFC 3550;
    the worse of audio and video; None until a receiver has reported it)."""

    fps: float
    kbps: float
    rtt_ms: float | None
    packet_loss: float
    jitter_ms: float | None = None


class QualityMeter:
    """Turns cumulative counters into rates over the time between samples."""

    def __init__(self) -> None:
        self._time = time.monotonic()
        self._frames = 0
        self._bytes = 0
        self._packets = 0
        self._lost = 0

    def sample(self, report: RTCStatsReport, video_frames: int) -> StreamQuality:
        now = time.monotonic()
        elapsed = max(now - self._time, 1e-6)
        total_bytes = packets = lost = 0
        rtts: list[float] = []
        jitters: list[float] = []
        for stats in report.values():
            if isinstance(stats, RTCTransportStats):
                # Media is bundled on one transport; RTCP adds a negligible amount.
                total_bytes += stats.bytesSent + stats.bytesReceived
            elif isinstance(stats, RTCOutboundRtpStreamStats):
                packets += stats.packetsSent
            elif isinstance(stats, RTCInboundRtpStreamStats):
                packets += stats.packetsReceived
                lost += stats.packetsLost
                jitters.append(stats.jitter / CLOCK_KHZ[stats.kind])
            elif isinstance(stats, RTCRemoteInboundRtpStreamStats):
                lost += stats.packetsLost
                jitters.append(stats.jitter / CLOCK_KHZ[stats.kind])
                if stats.roundTripTime is not None:
                    rtts.append(stats.roundTripTime)
        sent_or_received = packets - self._packets
        newly_lost = max(0, lost - self._lost)
        quality = StreamQuality(
            fps=(video_frames - self._frames) / elapsed,
            kbps=(total_bytes - self._bytes) * 8 / 1000 / elapsed,
            rtt_ms=max(rtts) * 1000 if rtts else None,
            packet_loss=newly_lost / max(1, sent_or_received + newly_lost),
            jitter_ms=max(jitters) if jitters else None,
        )
        self._time, self._frames, self._bytes, self._packets, self._lost = (
            now, video_frames, total_bytes, packets, lost,
        )
        return quality
