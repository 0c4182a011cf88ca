"""Metrics a fleet can scrape, with ``prometheus_client``: an HTTP listener, a
textfile for node_exporter's textfile collector, or both (``[metrics]``; both
off by default).

Every second the event loop reads the daemon (call state, participants, the
quality events, the speaker's levels, the counters) into a snapshot of metric
families; a scrape, on the listener's own thread, and the textfile writer,
in a worker thread, only read that snapshot, so neither ever waits for the
loop nor touches the call. prometheus_client's process collector adds the
process's CPU seconds and memory.

Label values that come from outside are bounded: a stream id is cut to
:data:`MAX_LABEL` characters of ``[A-Za-z0-9_.:@-]`` (anything else becomes
``_``), at most :data:`MAX_STREAMS` streams carry series at a time (the call's
own first, then the room's in order of arrival; ``appliance_streams`` counts
them all), and a stream's series go when it leaves. Participants' names never
become labels. Causes are the engine's error codes, a closed set.

>>> from prometheus_client import generate_latest
>>> metrics = Metrics()
>>> metrics.update(Snapshot(state="in_call", room="room-42", user="pi", participants=3,
...                         streams=[StreamFigures("pi-main", "send", fps=30.0, kbps=2000.0)]))
>>> text = generate_latest(metrics.registry).decode()
>>> 'appliance_participants 3.0' in text, 'appliance_stream_fps{direction="send",stream="pi-main"} 30.0' in text
(True, True)
>>> label = stream_label("bob's <script>" + "x" * 100)
>>> label[:16], len(label)
('bob_s__script_xx', 64)
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import __version__
from .call import CallState
from .figures import Snapshot, StreamFigures

log = logging.getLogger(__name__)

MAX_STREAMS = 32
MAX_LABEL = 64
CALL_STATES = tuple(state.name.lower() for state in CallState)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:@-]")


def stream_label(text: str) -> str:
    """A label value of at most :data:`MAX_LABEL` safe characters."""
    return _UNSAFE.sub("_", text[:MAX_LABEL]) or "_"


class _SnapshotCollector(Collector):
    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterable[Metric]:
        return self.families  # replaced whole by the loop, never changed in place


class Metrics:
    """The appliance's metrics in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._snapshot = _SnapshotCollector()
        self.registry.register(self._snapshot)
        ProcessCollector(registry=self.registry)

    def update(self, snapshot: Snapshot) -> None:
        """Turns ``snapshot`` into the families the next scrape reads."""
        s = snapshot
        info = GaugeMetricFamily("appliance_info", "The appliance's version, room and user id",
                                 labels=["version", "room", "user"])
        info.add_metric([__version__, stream_label(s.room), stream_label(s.user)], 1)
        state = GaugeMetricFamily("appliance_call_state", "1 for the call's current state", labels=["state"])
        for name in CALL_STATES:
            state.add_metric([name], 1 if name == s.state else 0)
        families: list[Metric] = [
            info, state,
            GaugeMetricFamily("appliance_call_duration_seconds", "Time in the current call (0 out of a call)",
                              value=s.call_seconds),
            CounterMetricFamily("appliance_call_seconds", "Time in calls since the service started",
                                value=s.call_seconds_total),
            GaugeMetricFamily("appliance_participants", "Participants in the room, the appliance included",
                              value=s.participants),
            GaugeMetricFamily("appliance_muted", "1 while the microphone is muted", value=int(s.muted)),
            GaugeMetricFamily("appliance_streams", "Streams of the call: its own and those played",
                              value=len(s.streams)),
            CounterMetricFamily("appliance_watchdog_pings", "WATCHDOG=1 sent to systemd", value=s.watchdog_pings),
            CounterMetricFamily("appliance_speaker_underruns", "Underruns the speaker's device reported",
                                value=s.speaker_underruns),
        ]
        for name, doc, counts in (
            ("appliance_reconnects", "Reconnections to the server, by cause", s.reconnects),
            ("appliance_join_failures", "Joins the server refused or that could not reach it, by cause",
             s.join_failures),
        ):
            family = CounterMetricFamily(name, doc, labels=["cause"])
            for cause, count in sorted(counts.items()):
                family.add_metric([stream_label(cause)], count)
            families.append(family)
        families += _stream_families(s.streams[:MAX_STREAMS])
        self._snapshot.families = families


def _stream_families(streams: list[StreamFigures]) -> list[Metric]:
    per_stream = {
        "fps": ("appliance_stream_fps", "Video frames per second", 1.0),
        "kbps": ("appliance_stream_kbps", "Media kbit/s", 1.0),
        "packet_loss": ("appliance_stream_packet_loss_ratio", "Packets lost in the last interval, 0 to 1", 1.0),
        "rtt_ms": ("appliance_stream_rtt_seconds", "Round-trip time to the server", 0.001),
        "jitter_ms": ("appliance_stream_jitter_seconds", "RTP interarrival jitter", 0.001),
        "audio_level": ("appliance_stream_audio_level", "Audio RMS, 0 to 1 of full scale, smoothed", 1.0),
    }
    families = {key: GaugeMetricFamily(name, doc, labels=["stream", "direction"])
                for key, (name, doc, _) in per_stream.items()}
    used: set[tuple[str, str]] = set()
    for figures in streams:
        label = stream_label(figures.stream)
        number = 2
        while (label, figures.direction) in used:  # two ids that sanitise alike stay two series
            label = f"{stream_label(figures.stream)[:MAX_LABEL - 4]}~{number}"
            number += 1
        used.add((label, figures.direction))
        for key, (_, _, scale) in per_stream.items():
            value = getattr(figures, key)
            if value is not None:
                families[key].add_metric([label, figures.direction], value * scale)
    return list(families.values())


class MetricsExport:
    """Serves :class:`Metrics` on ``address:port`` (port 0: no listener) and
    writes it to ``textfile`` every ``interval`` seconds ("": no file).

    The file is written beside its final name as ``.<name>.tmp``, made
    readable by all (node_exporter runs as a user of its own; the unit's
    umask is 077), then renamed over it, so a reader sees the old file or the
    new one, never part of one.
    """

    def __init__(self, metrics: Metrics, address: str, port: int, textfile: str, interval: float) -> None:
        self.metrics, self.address, self.port, self.textfile, self.interval = metrics, address, port, textfile, interval
        self._server: object | None = None
        self._thread: threading.Thread | None = None
        self._writing_failed = False

    def start(self) -> None:
        """Starts the listener; one error line and no listener if the port cannot be had."""
        if not self.port:
            return
        try:
            self._server, self._thread = start_http_server(self.port, self.address, self.metrics.registry)
        except OSError as exc:
            log.error("metrics: cannot listen on %s port %d (%s); running without the listener",
                      self.address, self.port, exc.strerror or exc)
        else:
            log.info("metrics: serving on %s port %d", self.address, self.port)

    def write_textfile(self) -> None:
        """One atomic replacement of the textfile (blocking: call it in a thread)."""
        path = Path(self.textfile)
        temporary = path.with_name(f".{path.name}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            with open(fd, "wb") as file:  # writes it all or raises (a full disk): never a short file renamed
                os.fchmod(fd, 0o644)
                file.write(generate_latest(self.metrics.registry))
            os.rename(temporary, path)
        except OSError as exc:
            if not self._writing_failed:  # one line per run of failures
                log.error("metrics: cannot write %s: %s", path, exc.strerror or exc)
            self._writing_failed = True
        else:
            if self._writing_failed:
                log.info("metrics: writing %s again", path)
            self._writing_failed = False

    async def write_textfile_every_interval(self) -> None:
        while self.textfile:
            await asyncio.to_thread(self.write_textfile)
            await asyncio.sleep(self.interval)

    def close(self) -> None:
        """Stops the listener and joins its thread (blocking: call it in a thread)."""
        if self._server is not None:
            self._server.shutdown()  # type: ignore[attr-defined]
            self._server.server_close()  # type: ignore[attr-defined]
            assert self._thread is not None
            self._thread.join()
            self._server = self._thread = None
