r"""The daemon's configuration: TOML in /etc/appliance, validated at the door.

``/etc/appliance/appliance.toml`` plus drop-ins ``/etc/appliance/appliance.d/*.toml``
(not those whose name starts with ``.``, such as an editor's ``.#x.toml``
lock) merged over it in name order, key by key. Every key is a field of the
section dataclasses below with its default and its rule (type, range, length);
``config/appliance.toml`` documents each, ``docs/configuration.md`` lists every
limit. ``appliance check-config`` and ``appliance run`` share this one
validation: a problem is one line naming the file, the key and what is wrong,
and ``appliance`` exits with 78, on which the unit does not restart.

Each file is opened without blocking and checked on the open descriptor
before it is read: a regular file of at most 1 MiB, UTF-8 (a bad byte is named
by its offset), TOML nested at most a few levels deep.

The token is read from the systemd credential ``token``
(``$CREDENTIALS_DIRECTORY``) or from ``[server] token_file``, both by the rule
of :mod:`~appliance.app.secretfile`; it never appears in the configuration
files, the logs or the environment.

Example, a file with one key (every other key takes its default):

>>> path = tmp / "appliance.toml"
>>> _ = path.write_text('[room]\nid = "room-42"\n[buttons]\njoin = "BOARD11"\n')
>>> config = load_config(path)
>>> config.room.id, config.buttons.join
('room-42', 'GPIO17')
>>> _ = path.write_text('[speaker]\nvolume = nan\n')
>>> load_config(path)
Traceback (most recent call last):
...
appliance.app.config.ConfigError: .../appliance.toml: speaker.volume: must be a finite number, not nan
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..engine.errors import EngineError
from ..engine.ids import check_room_id, check_user_id, check_user_name
from ..engine.naming import IdType, wire_room
from ..media.board import ENCODER_MODES
from . import paths
from .secretfile import SecretFileError, read_secret_file

MAX_FILE = 1 << 20
MAX_TEXT = 256
MAX_PATH = 4096
# sun_path holds 108 bytes with the terminating NUL.
MAX_SOCKET_PATH = 107
MAX_DEPTH = 4


class ConfigError(Exception):
    """One configuration problem: ``file: key: problem``, one printable line."""

    def __init__(self, file: Path | str, key: str, problem: str) -> None:
        text = f"{file}: {key}: {problem}" if key else f"{file}: {problem}"
        super().__init__("".join(c if c.isprintable() else "?" for c in text))


def _rule(default: Any, **rule: Any) -> Any:
    """A field with its default and its rule: ``range=(lo, hi)``, ``max_len``, ``choices``, ``items``;
    ``secret`` keeps the value out of every message."""
    return field(default=default, metadata=rule)


@dataclass(frozen=True)
class ServerConfig:
    url: str = _rule("ws://127.0.0.1:8188/", max_len=512)
    # Several servers; when not empty, used instead of url (a drop-in cannot unset url).
    urls: tuple[str, ...] = _rule((), max_len=512, items=8)
    token_file: str = _rule("", max_len=MAX_PATH)
    ice_servers: tuple[str, ...] = _rule((), max_len=512, items=8)
    ice_interfaces: tuple[str, ...] = _rule((), max_len=15, items=16)
    room_ids: str = _rule("auto", choices=("auto", "string", "number"))

    @property
    def servers(self) -> tuple[str, ...]:
        """``urls`` when not empty, else ``url``."""
        return self.urls or (self.url,)


@dataclass(frozen=True)
class RoomSection:
    id: str = "meeting-room"
    user_id: str = "appliance"
    user_name: str = "Meeting room"
    pin: str = _rule("", max_len=64, secret=True)
    auto_join: bool = False
    join_delay: float = _rule(0.0, range=(0, 3600))
    start_muted: bool = False


@dataclass(frozen=True)
class CameraConfig:
    source: str = _rule("pi", choices=("pi", "usb", "test", "none"))
    encoder: str = _rule("auto", choices=ENCODER_MODES)
    device: str = _rule("/dev/video0", max_len=MAX_PATH)
    input_format: str = _rule("", max_len=32)
    width: int = _rule(1280, range=(16, 3840), even=True)
    height: int = _rule(720, range=(16, 2160), even=True)
    fps: int = _rule(30, range=(1, 60))
    bitrate: int = _rule(2_000_000, range=(50_000, 20_000_000))
    gop: int = _rule(60, range=(1, 600))


@dataclass(frozen=True)
class MicrophoneConfig:
    source: str = _rule("alsa", choices=("alsa", "tone", "none"))
    device: str = _rule("default", max_len=MAX_TEXT)
    channels: int = _rule(1, range=(1, 2))


@dataclass(frozen=True)
class SpeakerConfig:
    enabled: bool = True
    device: str = _rule("default", max_len=MAX_TEXT)
    volume: float = _rule(1.0, range=(0, 4))
    latency_ms: int = _rule(60, range=(20, 1000))


@dataclass(frozen=True)
class AudioConfig:
    """WebRTC's audio processing on the microphone (:mod:`~appliance.media.processing`): on by
    default; off for a speakerphone that does its own."""

    echo_cancellation: bool = True
    noise_suppression: bool = True
    auto_gain: bool = True
    # Added to the delay the appliance knows (the speaker's latency_ms and one capture period).
    echo_delay_ms: int = _rule(0, range=(0, 500))


@dataclass(frozen=True)
class ScreenConfig:
    output: str = _rule("auto", choices=("auto", "kms", "framebuffer", "window", "headless"))
    width: int = _rule(1920, range=(160, 3840), even=True)
    height: int = _rule(1080, range=(120, 2160), even=True)
    fps: int = _rule(60, range=(1, 60))


@dataclass(frozen=True)
class ButtonsConfig:
    """Pins as gpiozero names them; stored as ``GPIO<n>`` whichever name was written."""

    join: str = _rule("GPIO17", pin=True)
    hangup: str = _rule("GPIO27", pin=True)
    mute: str = _rule("GPIO22", pin=True)
    in_call_led: str = _rule("GPIO23", pin=True)
    muted_led: str = _rule("GPIO24", pin=True)
    # Holding hang-up this long (seconds) leaves and stays idle even with auto-join; 0 turns it off.
    long_press: float = _rule(0.0, range=(0, 60))


@dataclass(frozen=True)
class ControlConfig:
    socket: str = _rule(paths.CONTROL_SOCKET, max_len=MAX_SOCKET_PATH)
    # Who may use the admin socket besides the service: members of this group.
    group: str = _rule(paths.ADMIN_GROUP, max_len=32)
    watchdog_interval: float = _rule(0.0, range=(0, 60))  # 0: a third of systemd's WatchdogSec


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus metrics (:mod:`~appliance.app.metrics`); both ways off by default."""

    http_port: int = _rule(0, range=(0, 65535))  # 0: no listener
    http_address: str = _rule("127.0.0.1", max_len=64)
    textfile: str = _rule("", max_len=MAX_PATH)  # "": no file
    textfile_interval: float = _rule(15.0, range=(1, 3600))


@dataclass(frozen=True)
class Config:
    server: ServerConfig = ServerConfig()
    room: RoomSection = RoomSection()
    camera: CameraConfig = CameraConfig()
    microphone: MicrophoneConfig = MicrophoneConfig()
    speaker: SpeakerConfig = SpeakerConfig()
    audio: AudioConfig = AudioConfig()
    screen: ScreenConfig = ScreenConfig()
    buttons: ButtonsConfig = ButtonsConfig()
    control: ControlConfig = ControlConfig()
    metrics: MetricsConfig = MetricsConfig()
    token: str | None = field(default=None, repr=False)
    files: tuple[str, ...] = ()


SECTIONS = {
    "server": ServerConfig, "room": RoomSection, "camera": CameraConfig, "microphone": MicrophoneConfig,
    "speaker": SpeakerConfig, "audio": AudioConfig, "screen": ScreenConfig, "buttons": ButtonsConfig, "control": ControlConfig,
    "metrics": MetricsConfig,
}

# The 40-pin header: physical pin -> BCM GPIO number (the rest are power and ground).
HEADER = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10, 21: 9,
          22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19, 36: 16, 37: 26,
          38: 20, 40: 21}
_PIN = re.compile(r"(?:(GPIO|BCM)|(BOARD|J8:))?(\d{1,2})")


def normalise_pin(name: str) -> str:
    """``GPIO<n>`` for any gpiozero name of a header pin; ``ValueError`` otherwise.

    >>> [normalise_pin(n) for n in ("GPIO17", "BCM17", "17", "BOARD11", "J8:11")]
    ['GPIO17', 'GPIO17', 'GPIO17', 'GPIO17', 'GPIO17']
    """
    match = _PIN.fullmatch(name)
    if not match:
        raise ValueError(f"{name!r} is not a GPIO pin name (GPIO17, BCM17, BOARD11, J8:11)")
    number = int(match.group(3))
    if match.group(2):
        if number not in HEADER:
            raise ValueError(f"{name!r} is not a GPIO on the 40-pin header (power, ground, or past pin 40)")
        return f"GPIO{HEADER[number]}"
    if number not in HEADER.values():
        raise ValueError(f"{name!r}: the 40-pin header has GPIO0 to GPIO27")
    return f"GPIO{number}"


def config_files(path: Path) -> list[Path]:
    """The main file, then its drop-ins (``<stem>.d/*.toml``, not dot files) in name order."""
    drop_ins = path.with_name(f"{path.stem}.d")
    if not drop_ins.is_dir():
        return [path]
    return [path, *sorted(p for p in drop_ins.glob("*.toml") if not p.name.startswith("."))]


def read_toml(file: Path) -> dict[str, Any]:
    """One file, by the rule in the module's docs."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConfigError(file, "", "no such file") from None
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(file, "", "not a regular file")
        if info.st_size > MAX_FILE:
            raise ConfigError(file, "", f"{info.st_size} bytes; a configuration file is at most {MAX_FILE}")
        data = os.read(fd, MAX_FILE + 1)
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "", f"not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(file, "", "not valid TOML: nested too deeply") from None


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _text(file: Path, key: str, value: Any, max_len: int, secret: bool = False) -> str:
    if not isinstance(value, str):
        kind = type(value).__name__
        shown = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}" if secret else _show(value)  # never repeat a secret
        raise ConfigError(file, key, f"must be a string, not {shown}")
    if not value.isprintable():
        raise ConfigError(file, key, "must be one line of printable text")
    if len(value.encode()) > max_len:
        raise ConfigError(file, key, f"must be at most {max_len} bytes, not {len(value.encode())}")
    return value


def _name(key: str) -> str:
    return key if len(key) <= 64 else key[:61] + "..."


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _coerce(file: Path, key: str, value: Any, default: Any, rule: dict[str, Any]) -> Any:
    """``value`` checked against the type of ``default`` and the field's rule."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(file, key, f"must be true or false, not {_show(value)}")
        return value
    if isinstance(default, (int, float)):
        whole = isinstance(default, int)
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
            raise ConfigError(file, key, f"must be a {'whole ' if whole else ''}number, not {_show(value)}")
        if not math.isfinite(value):
            raise ConfigError(file, key, f"must be a finite number, not {value}")
        low, high = rule["range"]
        if not low <= value <= high:
            raise ConfigError(file, key, f"must be from {low} to {high}, not {_show(value)}")
        if rule.get("even") and value % 2:
            raise ConfigError(file, key, f"must be even, not {value}")
        return type(default)(value)
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise ConfigError(file, key, f"must be a list of strings, not {_show(value)}")
        if len(value) > rule["items"]:
            raise ConfigError(file, key, f"must have at most {rule['items']} entries, not {len(value)}")
        return tuple(_text(file, key, item, rule["max_len"]) for item in value)
    value = _text(file, key, value, rule.get("max_len", MAX_TEXT), rule.get("secret", False))
    if "choices" in rule and value not in rule["choices"]:
        raise ConfigError(file, key, f"must be one of {', '.join(rule['choices'])}, not {_show(value)}")
    if rule.get("pin") and value:
        try:
            return normalise_pin(value)
        except ValueError as exc:
            raise ConfigError(file, key, str(exc)) from None
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
    values: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    origin: dict[str, Path] = {}
    files = config_files(path)
    for file in files:
        data = read_toml(file)
        for section, table in data.items():
            if section not in SECTIONS:
                raise ConfigError(file, _name(section), f"unknown section; known: {', '.join(SECTIONS)}")
            if not isinstance(table, dict):
                raise ConfigError(file, section, "must be a table ([section])")
            if _depth(table) > MAX_DEPTH:
                raise ConfigError(file, section, "nested too deeply")
            known = {f.name: f for f in fields(SECTIONS[section])}
            for key, value in table.items():
                name = f"{section}.{key}"
                if key not in known:
                    raise ConfigError(file, f"{section}.{_name(key)}",
                                      f"unknown key; known in [{section}]: {', '.join(sorted(known))}")
                default = known[key].default
                values[section][key] = _coerce(file, name, value, default, dict(known[key].metadata))
                origin[name] = file
    sections = {name: cls(**values[name]) for name, cls in SECTIONS.items()}
    config = Config(**sections, files=tuple(str(f) for f in files))  # type: ignore[arg-type]
    _check(config, origin, path)
    return Config(**sections, token=_read_token(config, origin), files=config.files)  # type: ignore[arg-type]


def _check(config: Config, origin: dict[str, Path], main: Path) -> None:
    """The rules that look at a value's content or at several keys together."""

    def where(key: str) -> Path:
        return origin.get(key, main)

    room = config.room
    for key, check in (("room.id", check_room_id), ("room.user_id", check_user_id),
                       ("room.user_name", check_user_name)):
        try:
            check(getattr(room, key.split(".")[1]))
        except EngineError as exc:
            raise ConfigError(where(key), key, exc.message) from None
    if config.server.room_ids == "number":
        try:
            wire_room(room.id, IdType.NUMBER)
        except EngineError as exc:
            raise ConfigError(where("room.id"), "room.id", exc.message) from None
    key = "server.urls" if config.server.urls else "server.url"
    for url in config.server.servers:
        _check_url(where(key), key, url, ("ws", "wss"))
    if len(set(config.server.urls)) < len(config.server.urls):
        raise ConfigError(where(key), key, "names a server twice")
    for url in config.server.ice_servers:
        _check_url(where("server.ice_servers"), "server.ice_servers", url, ("stun", "turn", "turns"))
    for name in config.server.ice_interfaces:
        if not name or "/" in name or " " in name:
            raise ConfigError(where("server.ice_interfaces"), "server.ice_interfaces",
                              f"{name!r} is not a network interface name")
    if config.server.token_file and not config.server.token_file.startswith("/"):
        raise ConfigError(where("server.token_file"), "server.token_file", "must be an absolute path")
    pins: dict[str, str] = {}
    for f in fields(ButtonsConfig):
        pin, key = getattr(config.buttons, f.name), f"buttons.{f.name}"
        if f.metadata.get("pin") and pin:
            if pin in pins:
                first = pins[pin]
                # Name the key someone wrote, not one left at its default.
                named, other = (key, first) if key in origin or first not in origin else (first, key)
                raise ConfigError(where(named), named, f"{pin} is also {other}")
            pins[pin] = key
    check_socket_path(where("control.socket"), config.control.socket)
    _check_metrics(config.metrics, where)
    if config.control.group and not re.fullmatch(r"[a-z_][a-z0-9_-]*\$?", config.control.group):
        raise ConfigError(where("control.group"), "control.group", f"{config.control.group!r} is not a group name")


def _check_metrics(metrics: MetricsConfig, where: Callable[[str], Path]) -> None:
    try:
        ipaddress.ip_address(metrics.http_address)
    except ValueError:
        raise ConfigError(where("metrics.http_address"), "metrics.http_address",
                          f"must be an IP address (127.0.0.1, ::1, 0.0.0.0), not {_show(metrics.http_address)}") from None
    path, key = metrics.textfile, "metrics.textfile"
    if path:
        if not path.startswith("/") or not path.endswith(".prom"):
            raise ConfigError(where(key), key, f"must be an absolute path ending in .prom (node_exporter reads only "
                                               f"those), not {_show(path)}")
        if not Path(path).parent.is_dir():
            raise ConfigError(where(key), key, f"{Path(path).parent} is not a directory")
        if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
            raise ConfigError(where(key), key, f"{path} exists and is not a regular file; it is left as it is")


def _check_url(file: Path, key: str, url: str, schemes: tuple[str, ...]) -> None:
    """``scheme://host[:port]/...`` (``scheme:host[:port]`` for STUN and TURN) with a valid port."""
    scheme, _, rest = url.partition(":")
    if scheme not in schemes:
        kinds = " or ".join(s + ("://" if s.startswith("ws") else ":") for s in schemes)
        raise ConfigError(file, key, f"must be a {kinds} URL, not {_show(url)}")
    if scheme.startswith("ws") and not rest.startswith("//"):
        raise ConfigError(file, key, f"{_show(url)} needs // after {scheme}:")
    parts = urlsplit(url if rest.startswith("//") else f"{scheme}://{rest.split('?')[0]}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(file, key, f"{_show(url)} has a port outside 1-65535") from None
    if port == 0:
        raise ConfigError(file, key, f"{_show(url)} has a port outside 1-65535")
    if not parts.hostname:
        raise ConfigError(file, key, f"{_show(url)} needs a host")


def check_socket_path(file: Path | str, path: str) -> None:
    """The admin socket's path: absolute, short enough, under directories, not another file.

    Never anything but a socket of ours is removed there, so a path that
    already names something else is refused rather than replaced.
    """
    key = "control.socket"
    if not path.startswith("/"):
        raise ConfigError(file, key, f"must be an absolute path, not {_show(path)}")
    if len(path.encode()) > MAX_SOCKET_PATH:
        raise ConfigError(file, key, f"must be at most {MAX_SOCKET_PATH} bytes (a Unix socket's limit), "
                                     f"not {len(path.encode())}")
    if path.endswith("/"):
        raise ConfigError(file, key, "must name a socket, not a directory")
    for parent in reversed(Path(path).parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigError(file, key, f"{parent} is not a directory")
    if os.path.lexists(path) and not stat.S_ISSOCK(os.lstat(path).st_mode):
        raise ConfigError(file, key, f"{path} exists and is not a socket; it is left as it is")
