"""``appliance run``: the meeting-room appliance as a systemd service.

Builds the engine, camera, microphone, screen, speaker, buttons and the admin
socket from the configuration, reports ``READY=1`` once the devices and the
screen are up (not after joining: a server outage must not fail the boot),
``STATUS=`` on every change and pings the watchdog from the event loop.
``SIGHUP`` re-reads the configuration (rejoining only when the room, the user,
the server or the token changed); ``SIGTERM`` leaves the room and exits 0.

``appliance run`` is ``asyncio.run(Daemon(load_config(path), path).run())``.
What the configuration asks for is what gets built:

>>> from appliance.app.config import CameraConfig, Config
>>> type(build_camera(Config(camera=CameraConfig(source="test", width=320, height=180)))).__name__
'TestPatternSource'
>>> engine_profile(Config()).server
'ws://127.0.0.1:8188/'
"""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import resource
import signal
import time
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.engine import Engine
from ..engine.errors import ErrorCode
from ..engine.profile import EngineProfile, Stream, User
from ..engine.quality import StreamQuality
from ..engine.states import RoomState, RoomStateReason, UpdateType
from ..engine.tracks import AudioSource, EncodedVideoSource
from ..media.encoder import EncoderSettings
from ..media.microphone import MicrophoneSettings, MicrophoneSource
from ..media.processing import AudioProcessing, ProcessingSettings
from ..media.speaker import Speaker, SpeakerSettings
from ..screen.compositor import Compositor, ScreenState
from ..screen.display import open_output
from ..testing.testpattern import TestPatternSource
from ..testing.tone import ToneSource
from .call import Call, CallState, Media
from .config import Config, ConfigError, load_config
from .control import ControlServer
from .figures import Snapshot, StreamFigures
from .logs import REDACTOR, current_room
from .notify import Notifier

if TYPE_CHECKING:
    from .metrics import MetricsExport

log = logging.getLogger(__name__)


def build_camera(config: Config) -> EncodedVideoSource | None:
    c = config.camera
    settings = EncoderSettings(c.width, c.height, c.fps, c.bitrate, c.gop)
    if c.source == "test":
        return TestPatternSource(settings)
    if c.source == "usb":
        from ..media.usbcamera import UsbCameraSource

        return UsbCameraSource(settings, c.device, c.input_format or None)
    if c.source == "pi":
        try:
            from ..media.picamera import PiCameraSource  # needs python3-picamera2 (libcamera)
        except ImportError as exc:
            raise ConfigError(config.files[0] if config.files else "config", "camera.source",
                              f"'pi' needs picamera2 and libcamera (apt install python3-picamera2): {exc}") from None
        return PiCameraSource(settings, c.encoder)
    return None


def build_processing(config: Config) -> AudioProcessing | None:
    """The microphone's audio processing, for a real microphone when any of it is on."""
    a = config.audio
    settings = ProcessingSettings(a.echo_cancellation, a.noise_suppression, a.auto_gain,
                                  config.speaker.latency_ms + CAPTURE_DELAY_MS + a.echo_delay_ms)
    return AudioProcessing(settings) if config.microphone.source == "alsa" and settings.any else None


def build_microphone(config: Config, processing: AudioProcessing | None = None) -> AudioSource | None:
    m = config.microphone
    if m.source == "alsa":
        return MicrophoneSource(MicrophoneSettings(device=m.device, channels=m.channels), processing=processing)
    if m.source == "tone":
        return ToneSource(440)
    return None


def engine_profile(config: Config) -> EngineProfile:
    return EngineProfile(
        server=config.server.servers[0] if len(config.server.servers) == 1 else config.server.servers,
        ice_servers=tuple({"urls": url} for url in config.server.ice_servers),
        ice_interfaces=config.server.ice_interfaces,
        room_ids=config.server.room_ids,
    )


# Sections whose change needs the devices, the screen or the admin socket rebuilt.
RESTART_SECTIONS = ("camera", "microphone", "speaker", "audio", "screen", "control", "metrics")
# What capture adds to the echo's delay: one period waits in the device before it is read.
CAPTURE_DELAY_MS = 20
# Seconds between the metrics' snapshots of the daemon.
METRICS_REFRESH = 1.0
# Seconds between the screen's looks at the audio levels (active speaker, microphone bar).
LEVELS_REFRESH = 0.1


def _section(config: Config, name: str) -> object:
    """A section as far as a restart is concerned (the speaker's volume applies at once)."""
    section = getattr(config, name)
    return replace(section, volume=0.0) if name == "speaker" else section


def _identity(config: Config) -> tuple[object, ...]:
    """What a reload must rejoin for."""
    return (config.room.id, config.room.user_id, config.room.user_name, config.room.pin, engine_profile(config),
            config.token)


class Daemon:
    def __init__(self, config: Config, config_path: Path) -> None:
        self.config = config
        self.config_path = config_path
        self.notifier = Notifier(config.control.watchdog_interval)
        self.qualities: dict[str, StreamQuality] = {}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._auto_join: asyncio.Task[None] | None = None
        self.auto_join_enabled = config.room.auto_join
        self.buttons: Any = None
        self._screenshot_task: asyncio.Future[str] | None = None
        self._reloading = asyncio.Lock()
        # What the last reload did: {"ok": bool, "error": str} or {"ok": True, "restart_needed": [...]}.
        self.last_reload: dict[str, Any] | None = None
        # For the metrics, over the process's life (a reload makes a new Call).
        self.reconnects: Counter[str] = Counter()
        self.join_failures: Counter[str] = Counter()
        self._call_started: float | None = None
        self._call_seconds_done = 0.0
        self.metrics: MetricsExport | None = None

    # -- life cycle -----------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        c = self.config
        self._check_environment()
        current_room[:] = [c.room.id]
        try:
            self.output = open_output(c.screen.output, c.screen.width, c.screen.height)
        except Exception as exc:  # kms++ missing, no /dev/fb0, no desktop: say which
            raise ConfigError(c.files[0] if c.files else "config", "screen.output",
                              f"{c.screen.output!r} output unavailable: {exc}") from None
        self.screen = Compositor(self.output.width, self.output.height, self.output.pixel_format, c.screen.fps)
        self.screen.set_status(ScreenState.IDLE, c.room.id)
        self.camera = build_camera(c)
        self.processing = build_processing(c)
        self.microphone = build_microphone(c, self.processing)
        self.speaker = None
        if c.speaker.enabled:
            settings = SpeakerSettings(c.speaker.device, latency_ms=c.speaker.latency_ms, volume=c.speaker.volume)
            self.speaker = Speaker(settings, processing=self.processing)
        self._start_call()
        self.control = ControlServer(c.control.socket, self.command, c.control.group)
        try:
            await self.control.start()
        except ConfigError:
            await self._stop_call()
            await asyncio.to_thread(self._close_devices)
            raise
        self._tasks += [
            asyncio.create_task(self.screen.run(self.output), name="screen"),
            asyncio.create_task(self.notifier.watchdog(), name="watchdog"),
            asyncio.create_task(self._follow_levels(), name="levels"),
        ]
        m = c.metrics
        if m.http_port or m.textfile:
            from .metrics import Metrics, MetricsExport  # prometheus_client only when it is used

            self.metrics = MetricsExport(Metrics(), m.http_address, m.http_port, m.textfile, m.textfile_interval)
            self.metrics.metrics.update(self.metrics_snapshot())
            self.metrics.start()
            self._tasks += [
                asyncio.create_task(self._refresh_metrics(), name="metrics"),
                asyncio.create_task(self.metrics.write_textfile_every_interval(), name="metrics-textfile"),
            ]
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: self._tasks.append(asyncio.create_task(self.reload())))
        # Everything made so far (modules, devices, the screen) lives as long as
        # the process: keep it out of every later collection, which then only
        # walks what calls create (see collect_garbage_soon in the engine).
        gc.freeze()
        self.notifier.ready(self.status_line())
        log.info("ready: %s", self.status_line())
        if self.auto_join_enabled:
            self._schedule_auto_join(c.room.join_delay)
        await self._stop.wait()
        self.notifier.stopping()
        log.info("stopping: leaving the room")
        await self._stop_call()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.control.close()
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.close)
        # The daemon opened the devices, so it closes them (the engine only
        # borrowed the camera and microphone); closing joins their threads.
        await asyncio.to_thread(self._close_devices)
        self.notifier.close()
        return 0

    def _check_environment(self) -> None:
        """What only the running service can check: systemd's watchdog, descriptors."""
        usec = self.notifier.watchdog_usec
        interval = self.config.control.watchdog_interval
        if usec and interval > usec / 2_000_000:
            raise ConfigError(self.config_path, "control.watchdog_interval",
                              f"must be at most half of WatchdogSec ({usec / 2_000_000:g} s), not {interval:g}")
        # Room for a flood of admin connections on top of the media's sockets.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
        if soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    def _close_devices(self) -> None:
        # The processing last: the microphone and speaker it was lent to are closed by then.
        for device in (self.camera, self.microphone, self.speaker, self.output, self.processing):
            if device is not None:
                device.close()

    def stop(self) -> None:
        self._stop.set()

    def _start_call(self) -> None:
        c = self.config
        self.engine = Engine.create(engine_profile(c))
        self.qualities.clear()  # the figures of the engine before a reload
        self.engine.on("player_quality_update", self._quality)
        self.engine.on("publisher_quality_update", self._quality)
        self.engine.on("room_state_update", self._count_room_state)
        self.engine.on("room_stream_update", self._forget_streams)
        media = Media(self.camera, self.microphone, self.screen, self.speaker)
        self.call = Call(self.engine, c.room.id, User(c.room.user_id, c.room.user_name), c.token, media,
                         on_change=self._changed, pin=c.room.pin or None)
        if c.room.start_muted:
            self.call.set_muted(True)
        if any((c.buttons.join, c.buttons.hangup, c.buttons.mute, c.buttons.in_call_led, c.buttons.muted_led)):
            from gpiozero.exc import GPIOZeroError

            from .buttons import Buttons

            try:
                self.buttons = Buttons(c.buttons, self.call, asyncio.get_running_loop(), on_long_press=self._long_press)
            except GPIOZeroError as exc:  # no GPIO here: the admin socket still works
                log.warning("buttons and LEDs unavailable (%s: %s); use `appliance join` and `appliance hangup`",
                            type(exc).__name__, exc)
            else:
                self.buttons.update(self.call)

    async def _stop_call(self) -> None:
        if self._auto_join is not None:
            self._auto_join.cancel()
            await asyncio.gather(self._auto_join, return_exceptions=True)
        if self.buttons is not None:
            self.buttons.close()
            self.buttons = None
        await self.call.close()
        await self.engine.destroy()

    def _schedule_auto_join(self, delay: float) -> None:
        async def join_later() -> None:
            await asyncio.sleep(delay)
            self.call.join()

        self._auto_join = asyncio.create_task(join_later(), name="auto-join")

    def _long_press(self) -> None:
        """Holding hang-up: leave, and stay out (no auto-join on reload) until restarted."""
        self.auto_join_enabled = False
        self.call.press_hangup()

    async def reload(self) -> None:
        """SIGHUP: re-read the configuration and apply it, one reload at a time.

        A configuration that does not validate is refused as a whole: the
        running one stays, one line says why, and ``STATUS=`` and ``status``
        say so until a reload succeeds. Changes to the devices, the screen or
        the admin socket are kept for the next restart (and said so).
        """
        async with self._reloading:
            self.notifier.reloading()
            try:
                new = await asyncio.to_thread(load_config, self.config_path)
            except ConfigError as exc:
                self.last_reload = {"ok": False, "error": str(exc)}
                log.error("reload refused, the running configuration stays: %s", exc)
                self.notifier.reloaded(self.status_line())
                return
            old = self.config
            restart = [name for name in RESTART_SECTIONS if _section(old, name) != _section(new, name)]
            volume = new.speaker.volume  # applies at once, even beside a change that waits for a restart
            self.config = new = replace(new, **{name: getattr(old, name) for name in restart})
            if self.speaker is not None:
                self.speaker.volume = volume
                self.config = new = replace(new, speaker=replace(new.speaker, volume=volume))
            REDACTOR.add(new.token)
            self.last_reload = {"ok": True, "restart_needed": restart}
            if restart:
                log.warning("reload: changes to %s take effect at the next restart (systemctl restart appliance)",
                            ", ".join(f"[{name}]" for name in restart))
            if _identity(old) != _identity(new) or old.buttons != new.buttons:
                was_joined = self.call.state is not CallState.IDLE
                log.info("configuration changed the room, user, server or buttons: rejoining")
                await self._stop_call()
                current_room[:] = [new.room.id]
                self._start_call()
                if was_joined or (new.room.auto_join and self.auto_join_enabled):
                    self.call.join()
            self.notifier.reloaded(self.status_line())
            log.info("configuration reloaded")

    # -- reporting ------------------------------------------------------------

    def _call_line(self) -> str:
        call = self.call
        room = call.room_id  # during a reload, the room being left, not the new one
        if call.state is CallState.IN_CALL:
            line = f"In call: {room}, {call.participants} participants{', muted' if call.muted else ''}"
            return f"{line}; no media: {call.media_problem}" if call.media_problem else line
        if call.state is CallState.JOINING:
            return f"Joining {room}: {call.detail}" if call.detail else f"Joining {room}"
        if call.state is CallState.RECONNECTING:
            return f"Reconnecting: {room}"
        if call.state is CallState.LEAVING:
            return f"Leaving {room}"
        return f"Idle: {room}" + (f" ({call.detail})" if call.detail else "")

    def status_line(self) -> str:
        """The call's state, and a refused reload until one succeeds (for STATUS= and the CLI)."""
        refused = self.last_reload is not None and not self.last_reload["ok"]
        return self._call_line() + ("; reload refused, see the log" if refused else "")

    def _changed(self, call: Call) -> None:
        in_call = call.state in (CallState.IN_CALL, CallState.RECONNECTING, CallState.LEAVING)
        if in_call and self._call_started is None:
            self._call_started = time.monotonic()
        elif not in_call and self._call_started is not None:
            self._call_seconds_done += time.monotonic() - self._call_started
            self._call_started = None
        if self.buttons is not None:
            self.buttons.update(call)
        self.notifier.status(self.status_line())

    def _quality(self, stream_id: str, quality: StreamQuality) -> None:
        self.qualities[stream_id] = quality

    def _forget_streams(self, room_id: str, update: UpdateType, streams: list[Stream]) -> None:
        """A stream that left takes its figures with it: a busy room's history must not pile up."""
        if update is UpdateType.DELETE:
            for stream in streams:
                self.qualities.pop(stream.stream_id, None)

    def _count_room_state(self, room_id: str, state: RoomState, code: ErrorCode, extended: dict[str, Any]) -> None:
        reason = extended.get("reason")
        if reason is RoomStateReason.RECONNECTING:
            self.reconnects[code.name.lower()] += 1
        elif reason is RoomStateReason.LOGIN_FAILED:
            self.join_failures[code.name.lower()] += 1

    def metrics_snapshot(self) -> Snapshot:
        """What the metrics export, read on the event loop."""
        call, engine = self.call, self.engine
        levels, microphone = self.audio_levels()
        streams = [_figures(call.stream_id, "send", self.qualities.get(call.stream_id), microphone)] \
            if call.state is CallState.IN_CALL else []
        streams += [_figures(s.stream_id, "receive", self.qualities.get(s.stream_id), levels.get(s.stream_id))
                    for s in engine.streams]
        now = time.monotonic()
        current = now - self._call_started if self._call_started is not None else 0.0
        return Snapshot(
            state=call.state.name.lower(), room=call.room_id, user=call.user.user_id, muted=call.muted,
            participants=call.participants,
            call_seconds=current, call_seconds_total=self._call_seconds_done + current, streams=streams,
            reconnects=dict(self.reconnects), join_failures=dict(self.join_failures),
            watchdog_pings=self.notifier.watchdog_pings,
            speaker_underruns=self.speaker.underruns if self.speaker is not None else 0,
        )

    def audio_levels(self) -> tuple[dict[str, float], float | None]:
        """Each played stream's level as mixed, and the microphone's (None without a real one)."""
        levels = self.speaker.levels() if self.speaker is not None else {}
        microphone = self.microphone.level if isinstance(self.microphone, MicrophoneSource) else None
        return levels, microphone

    async def _follow_levels(self) -> None:
        while True:
            await asyncio.sleep(LEVELS_REFRESH)
            self.screen.set_levels(*self.audio_levels())

    async def _refresh_metrics(self) -> None:
        assert self.metrics is not None
        while True:
            await asyncio.sleep(METRICS_REFRESH)
            self.metrics.metrics.update(self.metrics_snapshot())

    def status(self) -> dict[str, Any]:
        engine = self.engine
        levels, microphone = self.audio_levels()
        return {
            "state": self.call.state.value,
            "status": self.status_line(),
            "room": self.call.room_id,
            "server": engine.server,
            "user": self.call.user.user_id,
            "muted": self.call.muted,
            "media_problem": self.call.media_problem,
            "screen": {"state": self.screen.state.value, "detail": self.screen.detail},
            "reload": self.last_reload,
            "speaker": {"underruns": self.speaker.underruns} if self.speaker is not None else None,
            "levels": {stream: round(level, 4) for stream, level in levels.items()},
            "microphone_level": None if microphone is None else round(microphone, 4),
            "audio_processing": self.processing is not None and self.processing.active,
            "active_speaker": self.screen.active_speaker,
            "participants": [{"user_id": u.user_id, "user_name": u.user_name} for u in engine.users],
            "publishing": {
                "stream_id": self.call.stream_id,
                "state": engine.publisher_state(self.call.stream_id).value,
                "quality": _quality_dict(self.qualities.get(self.call.stream_id)),
            },
            "streams": [
                {
                    "stream_id": s.stream_id,
                    "user_id": s.user.user_id,
                    "state": engine.player_state(s.stream_id).value,
                    "quality": _quality_dict(self.qualities.get(s.stream_id)),
                }
                for s in engine.streams
            ],
        }

    async def command(self, command: str) -> dict[str, Any]:
        """The admin socket's commands."""
        if command == "status":
            return self.status()
        if command == "join":
            self.call.join()
        elif command == "hangup":
            await self.call.hangup()
        elif command == "mute":
            self.call.toggle_mute()
        elif command == "screenshot":
            return {"png": await self._screenshot()}
        else:
            return {"error": f"unknown command {command!r}; use status, join, hangup, mute or screenshot"}
        return {"state": self.call.state.value, "muted": self.call.muted}

    async def _screenshot(self) -> str:
        """The screen as base64 PNG, encoded in a thread; concurrent requests share one encoding."""
        if self._screenshot_task is None:
            def encode() -> str:
                return base64.b64encode(self.screen.screenshot_png()).decode()

            task = self._screenshot_task = asyncio.ensure_future(asyncio.to_thread(encode))
            task.add_done_callback(lambda _: setattr(self, "_screenshot_task", None))
        return await asyncio.shield(self._screenshot_task)


def _figures(stream_id: str, direction: str, quality: StreamQuality | None, level: float | None = None
             ) -> StreamFigures:
    if quality is None:
        return StreamFigures(stream_id, direction, audio_level=level)
    return StreamFigures(stream_id, direction, quality.fps, quality.kbps, quality.packet_loss, quality.rtt_ms,
                         quality.jitter_ms, level)


def _quality_dict(quality: StreamQuality | None) -> dict[str, Any] | None:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(quality).items()} if quality else None
