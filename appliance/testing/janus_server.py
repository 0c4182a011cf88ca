"""A local Janus process started from the project's own configuration.

The demo, the tests and the benchmarks use it; a deployed appliance talks to a
Janus run by its admins instead. Run it inside the private network namespace
(``scripts/netns``): Janus gathers ICE candidates only on ``ice_interfaces``.

Example (inside ``scripts/netns``):

>>> with LocalJanus() as janus:
...     janus.running, janus.url.startswith("ws://127.0.0.1:")
(True, True)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from string import Template
from types import TracebackType

from .netns import JANUS_INTERFACE

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "config" / "janus"
JANUS_LIBDIR = Path("/usr/lib") / f"{os.uname().machine}-linux-gnu" / "janus"


class JanusStartError(RuntimeError):
    """Janus did not come up; the message ends with the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalJanus:
    """Renders ``config/janus`` into a private folder and runs ``janus`` on it.

    ``token_secret`` turns on Janus's signed-token authentication; mint tokens
    with :func:`appliance.engine.tokens.mint_token` and the same secret.
    ``string_ids`` False gives Janus's default numeric room and participant
    ids; ``rooms`` is VideoRoom configuration text for rooms made in advance
    (e.g. ``room-1234: { publishers = 1 }``).
    """

    def __init__(
        self,
        *,
        ice_interfaces: tuple[str, ...] = (JANUS_INTERFACE,),
        ws_port: int | None = None,
        ws_ip: str = "127.0.0.1",
        own_namespace: tuple[str, str] | None = None,
        token_secret: str | None = None,
        rtp_port_range: str = "20000-40000",
        debug_level: int = 4,
        template_dir: Path = TEMPLATE_DIR,
        janus_binary: str = "janus",
        string_ids: bool = True,
        rooms: str = "",
    ) -> None:
        self.ws_port = ws_port or free_port()
        self.ws_ip = ws_ip
        self.url = f"ws://{ws_ip}:{self.ws_port}/"
        # (interface, address/prefix): run Janus in a network namespace of its
        # own, reached through that veth end, so a test can cut the link.
        self._own_namespace = own_namespace
        self._ice_interfaces = list(ice_interfaces)
        self._token_secret = token_secret
        self._rtp_port_range = rtp_port_range
        self._debug_level = debug_level
        self._template_dir = template_dir
        self._binary = janus_binary
        self._string_ids = string_ids
        self._rooms = rooms
        self._dir = Path(tempfile.mkdtemp(prefix="appliance-janus-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._render()

    @property
    def log_path(self) -> Path:
        return self._dir / "janus.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _render(self) -> None:
        enforce = ",".join(self._ice_interfaces)
        values = {
            "config_dir": str(self._dir),
            "plugins_dir": str(JANUS_LIBDIR / "plugins"),
            "transports_dir": str(JANUS_LIBDIR / "transports"),
            "events_dir": str(JANUS_LIBDIR / "events"),
            "loggers_dir": str(JANUS_LIBDIR / "loggers"),
            "debug_level": str(self._debug_level),
            "rtp_port_range": self._rtp_port_range,
            "ice_enforce_list": f'ice_enforce_list = "{enforce}"' if enforce else "",
            "token_auth": (
                f'token_auth = true\n\ttoken_auth_secret = "{self._token_secret}"'
                if self._token_secret
                else ""
            ),
            "ws_port": str(self.ws_port),
            "ws_ip": self.ws_ip,
            "string_ids": "true" if self._string_ids else "false",
            "rooms": self._rooms,
        }
        for template in self._template_dir.glob("*.jcfg"):
            text = Template(template.read_text()).substitute(values)
            target = self._dir / template.name
            target.write_text(text)
            target.chmod(0o600)  # may hold the token secret

    def start(self, timeout: float = 10.0) -> None:
        """Starts Janus and returns once its WebSocket port accepts connections."""
        if self.running:
            return
        command = [
            self._binary,
            "-F", str(self._dir),
            "-C", str(self._dir / "janus.jcfg"),
            "-L", str(self.log_path),
            "-N", "-o",
        ]
        if self._own_namespace is not None:
            interface, _ = self._own_namespace
            # Wait in the new namespace until the interface has been moved in.
            wait = f"while ! ip -o addr show dev {interface} 2>/dev/null | grep -q inet; do sleep 0.02; done; exec \"$@\""
            command = ["unshare", "--net", "--", "sh", "-c", wait, "janus", *command]
        self._process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if self._own_namespace is not None:
            self._move_interface(self._process.pid, *self._own_namespace)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            try:
                socket.create_connection((self.ws_ip, self.ws_port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise JanusStartError(f"janus did not start on port {self.ws_port}:\n{self.log_tail()}")

    @staticmethod
    def _move_interface(pid: int, interface: str, address: str) -> None:
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 5
        while os.readlink(f"/proc/{pid}/ns/net") == own:  # until unshare has made the new one
            if time.monotonic() > deadline:
                raise JanusStartError("janus's network namespace did not appear")
            time.sleep(0.01)
        subprocess.run(["ip", "link", "set", interface, "netns", str(pid)], check=True)
        inside = ["nsenter", "-t", str(pid), "-n", "ip"]
        subprocess.run([*inside, "link", "set", "lo", "up"], check=True)
        subprocess.run([*inside, "addr", "add", address, "dev", interface], check=True)
        subprocess.run([*inside, "link", "set", interface, "up"], check=True)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops Janus (SIGTERM, then SIGKILL after ``timeout``)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        """Kills Janus at once, as a crash would."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self) -> None:
        """Stops Janus and removes its private folder."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> LocalJanus:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
