"""`appliance run` as systemd runs it: a real NOTIFY_SOCKET, signals, the admin CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.app.memory import PR_SET_THP_DISABLE
from appliance.engine import UpdateType, User
from appliance.testing.janus_server import LocalJanus

from .conftest import profile_for
from .daemonkit import NotifySocket, write_config


def start_daemon(config: Path, notify: NotifySocket, watchdog_usec: int = 1_000_000,
                 log_level: str = "INFO") -> subprocess.Popen[str]:
    """``appliance run`` as systemd starts it; what it prints goes to ``log_of(daemon)``
    (a file, so that a chatty daemon never blocks on a full pipe)."""
    env = dict(os.environ, NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC=str(watchdog_usec),
               GPIOZERO_PIN_FACTORY="mock", APPLIANCE_LOG_LEVEL=log_level)
    with open(config.parent / "daemon.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "appliance", "run", "--config", str(config)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, text=True)


def huge_pages_can_be_refused() -> bool:
    """False only where the kernel is out of reach: qemu-user (make test-arm64)
    answers EINVAL to PR_SET_THP_DISABLE. Asked with a bare prctl in a process
    of its own, not with the code under test, so a broken no_huge_pages() fails."""
    code = f"import ctypes, sys; sys.exit(ctypes.CDLL(None).prctl({PR_SET_THP_DISABLE}, 1, 0, 0, 0) != 0)"
    return subprocess.run([sys.executable, "-c", code]).returncode == 0


def log_of(daemon: subprocess.Popen[str]) -> str:
    config = Path(daemon.args[daemon.args.index("--config") + 1])
    return (config.parent / "daemon.log").read_text(errors="replace")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket(tmp_path / "notify")
    yield sock
    sock.close()


async def test_notify_watchdog_cli_reload_and_clean_stop(janus, room_id, tmp_path, notify, engines):
    config = write_config(tmp_path, janus.url, room_id)
    socket_path = str(tmp_path / "control.sock")
    remote, rec = engines(profile_for(janus))
    await remote.login_room(room_id, User("remote"))
    daemon = start_daemon(config, notify)
    try:
        notify.wait_for(lambda: notify.lines("READY=1"))
        assert notify.lines("STATUS=")[0] == f"STATUS=Idle: {room_id}"
        # No transparent huge pages (appliance/app/memory.py): resident memory for a 512 MB board.
        if huge_pages_can_be_refused():
            assert "THP_enabled:\t0" in Path(f"/proc/{daemon.pid}/status").read_text()
        # WATCHDOG=1 at a third of WatchdogSec (1 s): about every 0.33 s.
        time.sleep(2.2)
        pings = [t for t, line in notify.messages if line == "WATCHDOG=1"]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert len(pings) >= 5 and all(0.2 < gap < 0.5 for gap in gaps), gaps

        assert cli("join", "--socket", socket_path).returncode == 0
        notify.wait_for(lambda: any(line.startswith(f"STATUS=In call: {room_id}") for line in notify.lines("STATUS=")))
        await rec.wait_for(lambda: any(s.stream_id == "room-pi-main" for s in remote.streams), what="the daemon's stream")
        status = cli("status", "--json", "--socket", socket_path)
        answer = json.loads(status.stdout)
        assert answer["state"] == "in call" and answer["room"] == room_id
        assert answer["publishing"]["stream_id"] == "room-pi-main"
        assert [p["user_id"] for p in answer["participants"]] == ["remote"]
        shot = tmp_path / "screen.png"
        assert cli("screenshot", str(shot), "--socket", socket_path).returncode == 0
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        # SIGHUP with a changed room: the daemon rejoins there.
        new_room = f"{room_id}-b"
        write_config(tmp_path, janus.url, new_room)
        daemon.send_signal(signal.SIGHUP)
        notify.wait_for(lambda: notify.lines("RELOADING=1"))
        notify.wait_for(lambda: any(line.startswith(f"STATUS=In call: {new_room}") for line in notify.lines("STATUS=")))
        await rec.wait_for(lambda: not remote.streams, what="left the old room")
        statuses = [line.split(":")[0] for line in notify.lines("STATUS=")]
        for state in ("STATUS=Idle", "STATUS=Joining " + room_id, "STATUS=In call", "STATUS=Leaving " + room_id,
                      "STATUS=Joining " + new_room):
            assert state in statuses, f"a STATUS= line for each state: {state} missing from {statuses}"

        # SIGTERM: leaves the room cleanly, exit 0.
        other, rec_other = engines(profile_for(janus))
        await other.login_room(new_room, User("other"))
        await rec_other.wait_for(lambda: [s.stream_id for s in other.streams] == ["room-pi-main"], what="published")
        daemon.send_signal(signal.SIGTERM)
        await rec_other.wait_for(
            lambda: any(args[1] is UpdateType.DELETE for args in rec_other.of("room_stream_update")), what="DELETE"
        )
        assert daemon.wait(timeout=15) == 0
        assert notify.lines("STOPPING=1")
    finally:
        if daemon.poll() is None:
            daemon.kill()
    output = log_of(daemon)
    assert "Traceback" not in output and "INFO" in output


async def test_server_down_at_start_is_ready_retries_and_joins(room_id, tmp_path, notify, engines):
    janus = LocalJanus()  # configured, not started yet
    config = write_config(tmp_path, janus.url, room_id, auto_join=True)
    daemon = start_daemon(config, notify)
    try:
        notify.wait_for(lambda: notify.lines("READY=1"))
        notify.wait_for(lambda: any("cannot reach the server, retrying" in line for line in notify.lines("STATUS=")))
        screen = json.loads(cli("status", "--json", "--socket", str(tmp_path / "control.sock")).stdout)["screen"]
        assert screen["state"] == "connecting" and "cannot reach the server, retrying" in screen["detail"]
        janus.start()
        notify.wait_for(lambda: any(line.startswith(f"STATUS=In call: {room_id}") for line in notify.lines("STATUS=")),
                        timeout=40)
        remote, rec = engines(profile_for(janus))
        await remote.login_room(room_id, User("remote"))
        await rec.wait_for(lambda: [s.stream_id for s in remote.streams] == ["room-pi-main"], what="published")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        janus.close()


def test_cli_without_a_daemon_says_so(tmp_path):
    result = cli("status", "--socket", str(tmp_path / "none.sock"))
    assert result.returncode == 69 and "cannot reach the daemon" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_run_with_a_broken_config_exits_78(tmp_path):
    config = tmp_path / "appliance.toml"
    config.write_text("[buttons]\njoin = 'nope'\n")
    result = cli("run", "--config", str(config))
    assert result.returncode == 78 and "buttons.join" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("settings", "key", "says"), [
    ('[camera]\nsource = "pi"\n[screen]\noutput = "headless"\n', "camera.source", "python3-picamera2"),
    ('[camera]\nsource = "test"\n[screen]\noutput = "framebuffer"\n', "screen.output", "output unavailable"),
])
def test_missing_hardware_for_the_config_is_one_line(tmp_path, settings, key, says):
    config = tmp_path / "appliance.toml"
    config.write_text(f'{settings}[control]\nsocket = "{tmp_path / "control.sock"}"\n')
    result = subprocess.run([sys.executable, "-m", "appliance", "run", "--config", str(config)],
                            capture_output=True, text=True, timeout=30, env=dict(os.environ, GPIOZERO_PIN_FACTORY="mock"))
    assert result.returncode == 78, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and says in lines[0] and str(config) in lines[0]
    assert "Traceback" not in result.stderr
