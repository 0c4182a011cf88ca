"""The daemon's figures for one refresh: what the metrics export (the call's
state, its streams' quality, the counters). Plain data, apart from
:mod:`appliance.app.metrics` so that the daemon loads ``prometheus_client``
(2.3 MB resident) only when an export is configured.

>>> Snapshot(state="in_call", streams=[StreamFigures("pi-main", "send", fps=30.0)]).streams[0].fps
30.0
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class StreamFigures:
    """One stream's figures from its latest quality event (None: not measured)."""

    stream: str
    direction: str  # "send" or "receive"
    fps: float | None = None
    kbps: float | None = None
    packet_loss: float | None = None
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    audio_level: float | None = None


@dataclass(frozen=True)
class Snapshot:
    """What the daemon reads out for one refresh."""

    state: str = "idle"
    room: str = ""
    user: str = ""
    muted: bool = False
    participants: int = 0
    call_seconds: float = 0.0  # in the current call
    call_seconds_total: float = 0.0  # in every call since start
    streams: list[StreamFigures] = field(default_factory=list)
    reconnects: dict[str, int] = field(default_factory=dict)
    join_failures: dict[str, int] = field(default_factory=dict)
    watchdog_pings: int = 0
    speaker_underruns: int = 0
