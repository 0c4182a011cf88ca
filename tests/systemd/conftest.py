"""Fixtures for the unit's tests in a booted container (``make test-systemd``)."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from .container import Container

CONFIG = textwrap.dedent("""
    [server]
    url = "ws://127.0.0.1:8289/"
    {token}
    [room]
    id = "{room}"
    user_id = "room-pi"
    user_name = "Room Pi"
    auto_join = true
    [camera]
    source = "test"
    width = 320
    height = 180
    fps = 15
    gop = 30
    [microphone]
    source = "tone"
    [speaker]
    enabled = false
    [screen]
    output = "headless"
    width = 640
    height = 360
    fps = 10
""")

JANUS = ("import time; from appliance.testing.janus_server import LocalJanus; "
         "j = LocalJanus(ws_port=8289); j.start(); time.sleep(1e9)")


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    """A freshly booted container with this checkout installed by install-pi."""
    lower = os.environ.get("APPLIANCE_SYSTEMD_LOWER")
    if not lower:
        pytest.exit("run these with `make test-systemd`, which builds and prepares the container", returncode=4)
    box = Container(Path(lower), tmp_path / "layer")
    yield box
    box.close()


def start_janus(box: Container) -> None:
    """Janus in the container, on a veth pair of its own (it skips loopback for ICE).

    Its own port: Debian's janus.service (numeric room ids) holds 8188.
    """
    box.run("bash", "-c", "ip link add v0 type veth peer name v1 && ip addr add 10.231.0.1/24 dev v0 "
            "&& ip addr add 10.231.0.2/24 dev v1 && ip link set v0 up && ip link set v1 up")
    box.run("systemd-run", "--unit=test-janus", "--quiet", "/opt/appliance/.venv/bin/python", "-c", JANUS)
    box.wait_until(lambda: box.run("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8289", check=False).returncode == 0,
                   30, "Janus in the container")


def configure(box: Container, room: str, token_file: str = "") -> None:
    token = f'token_file = "{token_file}"' if token_file else ""
    box.write("/etc/appliance/appliance.toml", CONFIG.format(room=room, token=token), 0o640, "root:appliance")


def remote(box: Container, room: str, *args: str, timeout: float = 60) -> dict[str, object]:
    import json

    result = box.run("/opt/appliance/.venv/bin/python", "/opt/appliance/tests/systemd/remote.py", "--room", room,
                     *args, timeout=timeout)
    return json.loads(result.stdout.strip().splitlines()[-1])
