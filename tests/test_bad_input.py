"""Broken configurations, as an admin with typos writes them, through both
``appliance check-config`` and ``appliance run``: each is refused with exit 78
and one line naming the file (and the key), with no traceback, no hang and no
file deleted.

Every case is a real file tree: the main file, drop-ins, FIFOs, links, token
files with the wrong mode, a regular file where the socket should go.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from appliance.testing.demo import synthetic_config

BOUND = 30  # seconds a command may take before the case counts as a hang


@dataclass
class Case:
    name: str
    drop_in: str | bytes | None = None  # the broken part, as appliance.d/50-case.toml
    main: str | bytes | None = None  # or the whole main file
    prepare: Callable[[Path], None] | None = None  # anything else the case needs on disk
    says: tuple[str, ...] = ()  # besides the file: the key, or what is wrong
    in_main: bool = False  # the line names the main file rather than the drop-in
    file: str = ""  # or this file (relative to the case's folder)
    extra: dict[str, str] = field(default_factory=dict)


def value(name: str, section: str, key: str, literal: str, says: str = "") -> Case:
    return Case(name, drop_in=f"[{section}]\n{key} = {literal}\n", says=(f"{section}.{key}", says))


def fifo(name: str) -> Callable[[Path], None]:
    return lambda folder: os.mkfifo(folder / name)


def secret(content: bytes, mode: int) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        (folder / "token").write_bytes(content)
        (folder / "token").chmod(mode)

    return make


def token_case(name: str, prepare: Callable[[Path], None] | None, says: str, path: str = "{folder}/token") -> Case:
    return Case(name, drop_in=f'[server]\ntoken_file = "{path}"\n', prepare=prepare, says=("server.token_file", says))


CASES = [
    # -- reading files ---------------------------------------------------------
    Case("main not UTF-8", main=b'[room]\nid = "caf\xe9"\n', says=("not UTF-8", "byte 16"), in_main=True),
    Case("drop-in not UTF-8", drop_in=b"[room]\nuser_name = \"\xff\xfe\"\n", says=("not UTF-8",)),
    Case("main with a NUL", main=b'[room]\nid = "a\x00b"\n', says=("not valid TOML",), in_main=True),
    Case("3000-deep array", main="[room]\nid = " + "[" * 3000 + "]" * 3000 + "\n", says=("nested too deeply",),
         in_main=True),
    Case("deep inline tables", drop_in="[room]\nid = " + "{a = " * 50 + "1" + "}" * 50 + "\n",
         says=("room", "nested too deeply")),
    Case("main is a FIFO", main=None, prepare=lambda f: (os.unlink(f / "appliance.toml"), os.mkfifo(f / "appliance.toml")),
         says=("not a regular file",), in_main=True),
    Case("drop-in is a FIFO", prepare=fifo("appliance.d/40-pipe.toml"), says=("not a regular file",),
         file="appliance.d/40-pipe.toml"),
    Case("main is a folder", prepare=lambda f: (os.unlink(f / "appliance.toml"), os.mkdir(f / "appliance.toml")),
         says=("not a regular file",), in_main=True),
    Case("main missing", prepare=lambda f: os.unlink(f / "appliance.toml"), says=("no such file",), in_main=True),
    Case("drop-in dangling link", prepare=lambda f: os.symlink(f / "nowhere.toml", f / "appliance.d/40-link.toml"),
         says=("no such file",), file="appliance.d/40-link.toml"),
    Case("drop-in is a folder", prepare=lambda f: os.mkdir(f / "appliance.d/40-dir.toml"),
         says=("not a regular file",), file="appliance.d/40-dir.toml"),
    Case("main over 1 MiB", main="# " + "x" * (1 << 20) + "\n", says=("bytes", "at most"), in_main=True),
    Case("not TOML", drop_in="[room\nid = 1\n", says=("not valid TOML",)),
    Case("section not a table", drop_in="room = 5\n", says=("room", "must be a table")),
    Case("unknown section", drop_in="[rooms]\nid = \"x\"\n", says=("rooms", "unknown section")),
    Case("unknown key", drop_in="[room]\nroom_id = \"x\"\n", says=("room.room_id", "unknown key")),
    Case("key as a table", drop_in="[room.id]\nx = 1\n", says=("room.id", "must be a string")),
    Case("huge unknown key", drop_in=f"[room]\n{'k' * 5000} = 1\n", says=("unknown key",)),
    token_case("token file a FIFO", fifo("token"), "not a regular file"),
    token_case("token file /dev/zero", None, "not a regular file", path="/dev/zero"),
    token_case("token file a folder", lambda f: os.mkdir(f / "token"), "not a regular file"),
    token_case("token file readable by all", secret(b"t:sig\n", 0o644), "readable by others"),
    token_case("token file writable by its group", secret(b"t:sig\n", 0o660), "writable by its group"),
    token_case("token file empty", secret(b"", 0o600), "is empty"),
    token_case("token file blank", secret(b" \n\n", 0o600), "is empty"),
    token_case("token file two lines", secret(b"a:b\nc:d\n", 0o600), "more than one line"),
    token_case("token file not UTF-8", secret(b"t:\xff\n", 0o600), "not UTF-8"),
    token_case("token file too big", secret(b"x" * (65 * 1024), 0o600), "at most"),
    token_case("token file missing", None, "No such file"),
    token_case("token file relative", None, "absolute path", path="token"),
    # -- values ----------------------------------------------------------------
    value("camera width 0", "camera", "width", "0", "from 16 to 3840"),
    value("camera height 1e18", "camera", "height", "1000000000000000000", "from 16 to 2160"),
    value("camera width odd", "camera", "width", "641", "even"),
    value("camera fps 0", "camera", "fps", "0", "from 1 to 60"),
    value("camera fps float", "camera", "fps", "29.97", "whole number"),
    value("camera bitrate 0", "camera", "bitrate", "0", "from 50000"),
    value("camera gop negative", "camera", "gop", "-5", "from 1 to 600"),
    value("camera source unknown", "camera", "source", '"webcam"', "must be one of"),
    value("camera encoder unknown", "camera", "encoder", '"fast"', "must be one of"),
    value("camera device too long", "camera", "device", '"/' + "d" * 5000 + '"', "at most"),
    value("screen fps 0", "screen", "fps", "0", "from 1 to 60"),
    value("screen width huge", "screen", "width", "100000", "from 160 to 3840"),
    value("screen output unknown", "screen", "output", '"hdmi"', "must be one of"),
    value("microphone channels 0", "microphone", "channels", "0", "from 1 to 2"),
    value("microphone channels text", "microphone", "channels", '"two"', "whole number"),
    value("speaker volume nan", "speaker", "volume", "nan", "finite"),
    value("speaker volume inf", "speaker", "volume", "inf", "finite"),
    value("speaker volume 5", "speaker", "volume", "5.0", "from 0 to 4"),
    value("speaker volume negative", "speaker", "volume", "-0.5", "from 0 to 4"),
    value("speaker latency 0", "speaker", "latency_ms", "0", "from 20 to 1000"),
    value("speaker enabled text", "speaker", "enabled", '"yes"', "true or false"),
    value("join delay inf", "room", "join_delay", "inf", "finite"),
    value("join delay negative", "room", "join_delay", "-1", "from 0 to 3600"),
    value("long press inf", "buttons", "long_press", "inf", "finite"),
    value("watchdog interval nan", "control", "watchdog_interval", "nan", "finite"),
    value("watchdog interval an hour", "control", "watchdog_interval", "3600", "from 0 to 60"),
    value("auto join number", "room", "auto_join", "1", "true or false"),
    value("user name 300 bytes", "room", "user_name", '"' + "n" * 300 + '"', "at most 256"),
    value("user name with a newline", "room", "user_name", '"Room\\nWATCHDOG=trigger"', "printable"),
    value("room id with a space", "room", "id", '"has space"', "not allowed"),
    value("room id 200 bytes", "room", "id", '"' + "r" * 200 + '"', "limit is 128"),
    value("user id empty", "room", "user_id", '""', "non-empty"),
    value("user id with a colon", "room", "user_id", '"a:b"', "not allowed"),
    value("room pin with a newline", "room", "pin", '"12\\n34"', "printable"),
    value("room pin 100 bytes", "room", "pin", '"' + "7" * 100 + '"', "at most 64"),
    value("room pin a number", "room", "pin", "739153", "must be a string, not an int"),
    value("room ids unknown", "server", "room_ids", '"numeric"', "must be one of"),
    Case("room id not a number for a numeric server", drop_in='[server]\nroom_ids = "number"\n[room]\nid = "board"\n',
         says=("room.id", "must be a whole number")),
    value("url http", "server", "url", '"http://janus:8188/"', "ws://"),
    value("url without a host", "server", "url", '"ws:///path"', "needs a host"),
    value("url without slashes", "server", "url", '"ws:janus:8188"', "needs //"),
    value("url port 0", "server", "url", '"ws://janus:0/"', "port"),
    value("url port 99999", "server", "url", '"ws://janus:99999/"', "1-65535"),
    value("url with a newline", "server", "url", '"ws://janus/\\nSTATUS=x"', "printable"),
    value("server urls not a list", "server", "urls", '"ws://janus-a:8188/"', "list of strings"),
    value("server urls http", "server", "urls", '["ws://janus-a:8188/", "http://janus-b/"]', "ws:// or wss://"),
    value("server urls twice", "server", "urls", '["ws://janus-a:8188/", "ws://janus-a:8188/"]', "twice"),
    value("server urls nine", "server", "urls", "[" + ", ".join(f'"ws://j{n}:8188/"' for n in range(9)) + "]",
          "at most 8"),
    value("ice server http", "server", "ice_servers", '["http://stun.lan"]', "stun:"),
    value("ice server no host", "server", "ice_servers", '["turn:"]', "needs a host"),
    value("ice servers not a list", "server", "ice_servers", '"stun:stun.lan"', "list of strings"),
    value("ice servers nine", "server", "ice_servers", "[" + ", ".join(['"stun:s.lan"'] * 9) + "]", "at most 8"),
    value("ice interface with a slash", "server", "ice_interfaces", '["eth0/1"]', "interface name"),
    value("ice interface too long", "server", "ice_interfaces", '["averyverylongname0"]', "at most 15"),
    value("pin unknown name", "buttons", "join", '"PIN17"', "not a GPIO pin name"),
    value("pin GPIO99", "buttons", "join", '"GPIO99"', "GPIO0 to GPIO27"),
    value("pin BOARD1 is power", "buttons", "mute", '"BOARD1"', "power, ground"),
    value("pin BOARD41", "buttons", "mute", '"BOARD41"', "power, ground"),
    Case("pin twice by name", drop_in='[buttons]\njoin = "GPIO5"\nmute = "GPIO5"\n', says=("buttons.mute", "is also buttons.join")),
    Case("pin twice GPIO and BOARD", drop_in='[buttons]\njoin = "GPIO17"\nin_call_led = "BOARD11"\n',
         says=("buttons.in_call_led", "GPIO17 is also buttons.join")),
    Case("pin twice BCM and J8", drop_in='[buttons]\nhangup = "BCM27"\nmute = "J8:13"\n',
         says=("buttons.mute", "GPIO27 is also buttons.hangup")),
    Case("pin twice number and GPIO", drop_in='[buttons]\njoin = "22"\n', says=("buttons.join", "GPIO22 is also buttons.mute")),
    value("control group not a name", "control", "group", '"bad group!"', "not a group name"),
    # -- run-time paths, found by check-config too -------------------------------
    value("socket path too long", "control", "socket", '"/tmp/' + "s" * 120 + '.sock"', "at most 107"),
    value("socket path empty", "control", "socket", '""', "absolute path"),
    value("socket path relative", "control", "socket", '"control.sock"', "absolute path"),
    value("socket path a folder name", "control", "socket", '"/tmp/x/"', "not a directory"),
    Case("socket under a regular file", drop_in='[control]\nsocket = "{folder}/file/control.sock"\n',
         prepare=lambda f: (f / "file").write_text("keep me\n"), says=("control.socket", "is not a directory")),
    Case("socket path an existing file", drop_in='[control]\nsocket = "{folder}/precious.txt"\n',
         prepare=lambda f: (f / "precious.txt").write_text("keep me\n"), says=("control.socket", "not a socket")),
    Case("socket path an existing folder", drop_in='[control]\nsocket = "{folder}/dir"\n',
         prepare=lambda f: os.mkdir(f / "dir"), says=("control.socket", "not a socket")),
]


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every path under ``folder`` with its content (or its kind)."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            found[str(path)] = f"link to {os.readlink(path)}"
        elif path.is_file():
            found[str(path)] = path.read_bytes()
        else:
            found[str(path)] = "fifo" if path.is_fifo() else "dir"
    return found


def build(case: Case, folder: Path) -> Path:
    main = folder / "appliance.toml"
    (folder / "appliance.d").mkdir()
    base = synthetic_config("ws://127.0.0.1:9/", "room", folder / "control.sock", auto_join=False)
    content = case.main if case.main is not None else base
    main.write_bytes(content if isinstance(content, bytes) else content.encode())
    if case.drop_in is not None:
        drop_in = case.drop_in if isinstance(case.drop_in, bytes) else case.drop_in.replace("{folder}", str(folder)).encode()
        (folder / "appliance.d" / "50-case.toml").write_bytes(drop_in)
    if case.prepare is not None:
        case.prepare(folder)
    return main


def run(command: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GPIOZERO_PIN_FACTORY="mock")
    env.pop("NOTIFY_SOCKET", None)
    try:
        return subprocess.run([sys.executable, "-m", "appliance", *command], capture_output=True, text=True,
                              timeout=BOUND, cwd=folder, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{command[0]} hung for {BOUND} s") from None


def test_the_corpus_is_large_and_covers_every_class():
    assert len(CASES) >= 70
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_broken_configuration_is_one_line_and_78(case, tmp_path):
    main = build(case, tmp_path)
    before = snapshot(tmp_path)
    named = (str(tmp_path / case.file) if case.file else str(main) if case.in_main
             else str(tmp_path / "appliance.d" / "50-case.toml") if case.drop_in is not None else "")
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda command: run(command, tmp_path),
                                [["check-config", str(main)], ["run", "--config", str(main)]]))
    for verb, result in zip(("check-config", "run"), results):
        lines = result.stderr.splitlines()
        assert result.returncode == 78, f"{verb}: exit {result.returncode}: {result.stderr[-2000:]}"
        assert len(lines) == 1, f"{verb}: {result.stderr[-2000:]}"
        assert "Traceback" not in result.stderr and result.stdout == ""
        line = lines[0]
        assert line.startswith(f"appliance {verb}: ") and line.isprintable() and len(line) < 600, line
        assert named in line, f"{verb} does not name {named}: {line}"
        for fragment in case.says:
            assert fragment in line, f"{verb}: {fragment!r} not in {line}"
        assert snapshot(tmp_path) == before, f"{verb} changed or deleted a file"


def test_an_editor_lock_beside_the_drop_ins_is_ignored(tmp_path):
    """Emacs leaves ``.#name.toml`` links to nowhere while editing; systemd ignores dot files too."""
    main = build(Case("lock"), tmp_path)
    os.symlink("root@pi.1234:1700000000", tmp_path / "appliance.d" / ".#50-case.toml")
    (tmp_path / "appliance.d" / ".hidden.toml").write_text("not = [valid")
    result = run(["check-config", str(main)], tmp_path)
    assert result.returncode == 0, result.stderr
