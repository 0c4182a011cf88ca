r"""The daemon's configuration: TOML in /etc/appliance, validated up front.

``/etc/appliance/appliance.toml`` plus drop-ins ``/etc/appliance/appliance.d/*.toml``
merged over it in name order, key by key. Every key, its type and default is
a field of the section dataclasses below (and documented in
``config/appliance.toml``). Every
problem is reported as one line naming the file, the key and what is wrong,
and ``appliance`` exits with 78 (EX_CONFIG).

The token is read from the systemd credential ``token``
(``$CREDENTIALS_DIRECTORY``) or from ``[server] token_file``, both by the rule
of :mod:`~appliance.app.secretfile`; it never appears in the configuration
files, the logs or the environment.

Example, a file with one key (every other key takes its default):

>>> path = tmp / "appliance.toml"
>>> _ = path.write_text('[room]\nid = "room-42"\n')
>>> config = load_config(path)
>>> config.room.id, config.buttons.join
('room-42', 'GPIO17')
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..engine.errors import EngineError
from ..engine.ids import check_room_id, check_user_id
from . import paths
from .secretfile import SecretFileError, read_secret_file

_PIN = re.compile(r"(GPIO|BCM)\d{1,2}|(BOARD|J8:)\d{1,2}|\d{1,2}")


class ConfigError(Exception):
    """One configuration problem: ``file: key: problem``."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}" if key else f"{file}: {problem}")


@dataclass(frozen=True)
class ServerConfig:
    url: str = "ws://127.0.0.1:8188/"
    token_file: str = ""
    ice_servers: tuple[str, ...] = ()
    ice_interfaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoomSection:
    id: str = "meeting-room"
    user_id: str = "appliance"
    user_name: str = "Meeting room"
    auto_join: bool = False
    join_delay: float = 0.0
    start_muted: bool = False


@dataclass(frozen=True)
class CameraConfig:
    source: str = "pi"  # pi | usb | test | none
    encoder: str = "auto"
    device: str = "/dev/video0"
    input_format: str = ""
    width: int = 1280
    height: int = 720
    fps: int = 30
    bitrate: int = 2_000_000
    gop: int = 60


@dataclass(frozen=True)
class MicrophoneConfig:
    source: str = "alsa"  # alsa | tone | none
    device: str = "default"
    channels: int = 1


@dataclass(frozen=True)
class SpeakerConfig:
    enabled: bool = True
    device: str = "default"
    volume: float = 1.0
    latency_ms: int = 60


@dataclass(frozen=True)
class ScreenConfig:
    output: str = "auto"  # auto | kms | framebuffer | window | headless
    width: int = 1920
    height: int = 1080
    fps: int = 30


@dataclass(frozen=True)
class ButtonsConfig:
    join: str = "GPIO17"
    hangup: str = "GPIO27"
    mute: str = "GPIO22"
    in_call_led: str = "GPIO23"
    muted_led: str = "GPIO24"
    # Holding hang-up this long (seconds) leaves and stays idle even with auto-join; 0 turns it off.
    long_press: float = 0.0


@dataclass(frozen=True)
class ControlConfig:
    socket: str = paths.CONTROL_SOCKET
    watchdog_interval: float = 0.0  # 0: half of systemd's WatchdogSec


@dataclass(frozen=True)
class Config:
    server: ServerConfig = ServerConfig()
    room: RoomSection = RoomSection()
    camera: CameraConfig = CameraConfig()
    microphone: MicrophoneConfig = MicrophoneConfig()
    speaker: SpeakerConfig = SpeakerConfig()
    screen: ScreenConfig = ScreenConfig()
    buttons: ButtonsConfig = ButtonsConfig()
    control: ControlConfig = ControlConfig()
    token: str | None = field(default=None, repr=False)
    files: tuple[str, ...] = ()


_SECTION_TYPES = {
    "server": ServerConfig, "room": RoomSection, "camera": CameraConfig, "microphone": MicrophoneConfig,
    "speaker": SpeakerConfig, "screen": ScreenConfig, "buttons": ButtonsConfig, "control": ControlConfig,
}
_CHOICES = {
    ("camera", "source"): ("pi", "usb", "test", "none"),
    ("camera", "encoder"): ("auto", "hardware", "software"),
    ("microphone", "source"): ("alsa", "tone", "none"),
    ("screen", "output"): ("auto", "kms", "framebuffer", "window", "headless"),
}


def config_files(path: Path) -> list[Path]:
    """The main file, then its drop-ins (``<stem>.d/*.toml``) in name order."""
    drop_ins = path.with_name(f"{path.stem}.d")
    return [path, *sorted(drop_ins.glob("*.toml"))] if drop_ins.is_dir() else [path]


def _coerce(file: Path, key: str, value: Any, default: Any) -> Any:
    kind = type(default)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(file, key, f"must be true or false, not {value!r}")
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(file, key, f"must be a whole number, not {value!r}")
        if value < 0:
            raise ConfigError(file, key, f"must not be negative, not {value}")
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(file, key, f"must be a number, not {value!r}")
        if value < 0:
            raise ConfigError(file, key, f"must not be negative, not {value}")
        value = float(value)
    elif isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(file, key, f"must be a list of strings, not {value!r}")
        value = tuple(value)
    elif not isinstance(value, kind):
        raise ConfigError(file, key, f"must be a string, not {value!r}")
    return value


def _read_token(config: Config, origin: dict[str, Path]) -> str | None:
    """The systemd credential ``token`` if there is one, else ``server.token_file`` if set."""
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and os.path.lexists(os.path.join(credentials, "token")):
        path, file, key = Path(credentials) / "token", "systemd credential 'token'", ""
    elif config.server.token_file:
        path, file, key = Path(config.server.token_file), str(origin["server.token_file"]), "server.token_file"
    else:
        return None
    try:
        return read_secret_file(path)
    except SecretFileError as exc:
        raise ConfigError(file, key, str(exc)) from None


def load_config(path: Path = paths.CONFIG) -> Config:
    """Reads, merges and validates; raises :class:`ConfigError` on the first problem."""
    values: dict[str, dict[str, Any]] = {name: {} for name in _SECTION_TYPES}
    origin: dict[str, Path] = {}
    files = config_files(path)
    for file in files:
        try:
            data = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise ConfigError(file, "", "no such file") from None
        except OSError as exc:
            raise ConfigError(file, "", f"cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(file, "", f"not valid TOML: {exc}") from None
        for section, table in data.items():
            if section not in _SECTION_TYPES:
                raise ConfigError(file, section, f"unknown section; known: {', '.join(_SECTION_TYPES)}")
            if not isinstance(table, dict):
                raise ConfigError(file, section, "must be a table ([section])")
            defaults = _SECTION_TYPES[section]()
            known = {f.name for f in fields(defaults)}
            for key, value in table.items():
                name = f"{section}.{key}"
                if key not in known:
                    raise ConfigError(file, name, f"unknown key; known in [{section}]: {', '.join(sorted(known))}")
                values[section][key] = _coerce(file, name, value, getattr(defaults, key))
                origin[name] = file
    sections = {name: cls(**values[name]) for name, cls in _SECTION_TYPES.items()}
    config = Config(**sections, files=tuple(str(f) for f in files))
    _check(config, origin, path)
    return Config(**sections, token=_read_token(config, origin), files=config.files)


def _check(config: Config, origin: dict[str, Path], main: Path) -> None:
    def where(key: str) -> Path:
        return origin.get(key, main)

    for (section, key), choices in _CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in choices:
            raise ConfigError(where(f"{section}.{key}"), f"{section}.{key}", f"must be one of {', '.join(choices)}, not {value!r}")
    for key, check in (("room.id", check_room_id), ("room.user_id", check_user_id)):
        try:
            check(getattr(config.room, key.split(".")[1]))
        except EngineError as exc:
            raise ConfigError(where(key), key, exc.message) from None
    if not re.match(r"wss?://", config.server.url):
        raise ConfigError(where("server.url"), "server.url", f"must be a ws:// or wss:// URL, not {config.server.url!r}")
    pins: dict[str, str] = {}
    for f in fields(ButtonsConfig):
        value = getattr(config.buttons, f.name)
        if not isinstance(value, str) or not value:
            continue
        key = f"buttons.{f.name}"
        if not _PIN.fullmatch(value):
            raise ConfigError(where(key), key, f"{value!r} is not a GPIO pin name (GPIO17, BCM17, BOARD11, J8:11)")
        if value in pins:
            raise ConfigError(where(key), key, f"pin {value} is already used by buttons.{pins[value]}")
        pins[value] = f.name
    if config.speaker.volume > 4:
        raise ConfigError(where("speaker.volume"), "speaker.volume", f"must be at most 4.0, not {config.speaker.volume}")
    if config.camera.width % 2 or config.camera.height % 2 or not config.camera.fps:
        raise ConfigError(where("camera.width"), "camera.width", "width and height must be even, fps above 0")
