"""`appliance run` against a hostile world: an admin-socket flood, a server that
lies in its error text, a DEBUG log with a token, broken reloads. Each runs
the daemon as systemd would (a real NOTIFY_SOCKET and WATCHDOG_USEC)."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import websockets

from appliance.engine import User
from appliance.engine.tokens import mint_token
from appliance.testing.demo import synthetic_config
from appliance.testing.janus_server import LocalJanus

from .conftest import profile_for
from .daemonkit import NotifySocket, write_config
from .test_daemon_process import cli, log_of, start_daemon

ALLOWED_NOTIFY = ("READY=1", "STATUS=", "WATCHDOG=1", "RELOADING=1", "STOPPING=1")


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket(tmp_path / "notify")
    yield sock
    sock.close()


def stop(daemon: subprocess.Popen[str]) -> str:
    """Stops the daemon (SIGTERM) and returns everything it printed."""
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
    return log_of(daemon)


FLOOD = textwrap.dedent("""
    import resource, socket, sys, threading, time
    path, held, shots = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_NOFILE, (held + shots + 64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    answered = []
    def screenshot():
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(20)
                s.connect(path)
                s.sendall(b'{"command": "screenshot"}\\n')
                data = b""
                while chunk := s.recv(1 << 20):
                    data += chunk
                answered.append(data.startswith(b'{"png"'))
        except OSError:
            answered.append(False)
    threads = [threading.Thread(target=screenshot) for _ in range(shots)]
    for t in threads:
        t.start()
    sockets, attempts = [], 0
    for _ in range(held):
        s = socket.socket(socket.AF_UNIX)
        s.setblocking(False)
        attempts += 1
        try:
            s.connect(path)
            sockets.append(s)
        except OSError:
            s.close()
    for t in threads:
        t.join()
    time.sleep(1)
    print(attempts, len(sockets), sum(answered))
""")


async def test_an_admin_socket_flood_starves_neither_the_watchdog_nor_the_video(janus, room_id, tmp_path, notify,
                                                                                 engines):
    config = write_config(tmp_path, janus.url, room_id, auto_join=True)
    remote, rec = engines(profile_for(janus))
    frames: list[float] = []
    await remote.login_room(room_id, User("remote"))
    daemon = start_daemon(config, notify, watchdog_usec=2_000_000)
    try:
        await rec.wait_for(lambda: any(s.stream_id == "room-pi-main" for s in remote.streams), timeout=20,
                           what="the appliance in the room")
        await remote.start_playing_stream("room-pi-main", video_sink=lambda f: frames.append(time.monotonic()))
        await rec.wait_for(lambda: len(frames) > 15, what="video before the flood")
        flood_started = time.monotonic()
        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FLOOD, str(tmp_path / "control.sock"), "1100", "300",
            stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(flood.communicate(), 120)
        flood_ended = time.monotonic()
        attempts, held, answered = map(int, out.split())
        print(f"flood: {attempts} connection attempts ({held} accepted by the kernel), "
              f"{answered} of 300 screenshots answered, {flood_ended - flood_started:.1f} s")
        await asyncio.sleep(1)
        assert attempts >= 1100 and answered > 0
        pings = [t for t, line in notify.messages if line == "WATCHDOG=1" and t > flood_started - 1]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        during = [t for t in frames if flood_started - 0.5 < t < flood_ended + 0.5]
        video_gaps = [b - a for a, b in zip(during, during[1:])]
        print(f"worst watchdog gap {max(gaps):.2f} s, worst video gap {max(video_gaps):.2f} s")
        assert max(gaps) <= 1.0, "watchdog gaps within half of WatchdogSec (2 s)"
        assert max(video_gaps) <= 1.0, "the remote kept receiving video"
        assert cli("status", "--socket", str(tmp_path / "control.sock")).returncode == 0, "still answers"
    finally:
        output = stop(daemon)
    assert daemon.returncode == 0
    assert "Traceback" not in output and "Exception" not in output, output[-3000:]


async def test_a_lying_server_cannot_write_to_systemd(tmp_path, notify):
    """Janus's error text goes into STATUS=; a server that puts newlines in it
    must not add a line (WATCHDOG=trigger) of its own."""
    evil = "refused\nWATCHDOG=trigger\nSTATUS=pwned\x1b[2J" + "x" * 500

    async def lying_janus(ws: websockets.ServerConnection) -> None:
        async for raw in ws:
            request = json.loads(raw)
            reply = {"transaction": request.get("transaction")}
            if request["janus"] in ("create", "attach"):
                reply.update(janus="success", data={"id": 1})
            elif request["janus"] == "message":
                reply.update(janus="error", error={"code": 490, "reason": evil})
            else:
                reply.update(janus="ack")
            await ws.send(json.dumps(reply))

    async with websockets.serve(lying_janus, "127.0.0.1", 0, subprotocols=["janus-protocol"]) as server:
        port = server.sockets[0].getsockname()[1]
        config = tmp_path / "appliance.toml"
        config.write_text(synthetic_config(f"ws://127.0.0.1:{port}/", "room", tmp_path / "control.sock",
                                           screen=(640, 360, 10), camera=(320, 180, 15)))
        daemon = await asyncio.to_thread(start_daemon, config, notify)
        try:
            await asyncio.to_thread(notify.wait_for, lambda: any("the server refused" in line
                                                                 for line in notify.lines("STATUS=")))
            status = json.loads((await asyncio.to_thread(cli, "status", "--json", "--socket",
                                                         str(tmp_path / "control.sock"))).stdout)
        finally:
            output = await asyncio.to_thread(stop, daemon)
    refused = [line for line in notify.lines("STATUS=") if "the server refused" in line]
    print(refused[0])
    assert "WATCHDOG=trigger" in refused[0], "the server's words are shown, on one line"
    for datagram in notify.datagrams:
        lines = datagram.split("\n")
        assert all(line.startswith(ALLOWED_NOTIFY) for line in lines), datagram
        assert len([line for line in lines if line.startswith("STATUS=")]) <= 1, datagram
        assert not any(line.startswith(("WATCHDOG=trigger", "STATUS=pwned")) for line in lines)
        assert all(line.isprintable() and len(line) <= 220 for line in lines), datagram
    assert "\n" not in status["screen"]["detail"] and "\x1b" not in status["status"]
    assert "the server refused" in status["screen"]["detail"], "refused, not 'cannot reach'"
    for line in output.splitlines():
        assert line.isprintable(), f"a log line with control characters: {line!r}"


async def test_no_log_line_holds_the_token_even_at_debug(tmp_path, notify, engines, room_id):
    secret = "debug-secret"
    with LocalJanus(token_secret=secret) as janus:
        token = mint_token(secret, 3600)
        token_file = tmp_path / "token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        config = write_config(tmp_path, janus.url, room_id, auto_join=True)
        config.write_text(config.read_text().replace("[server]\n", f'[server]\ntoken_file = "{token_file}"\n'))
        daemon = start_daemon(config, notify, log_level="DEBUG")
        try:
            remote, rec = engines(profile_for(janus))
            from appliance.engine import RoomConfig

            await remote.login_room(room_id, User("remote"), RoomConfig(token=token))
            await rec.wait_for(lambda: any(s.stream_id == "room-pi-main" for s in remote.streams), timeout=20,
                               what="the appliance in, with its token")
            frames: list[object] = []
            await remote.start_playing_stream("room-pi-main", video_sink=frames.append)
            await rec.wait_for(lambda: len(frames) > 10, what="media")
            daemon.send_signal(signal.SIGHUP)  # a reload reads the token again
            await asyncio.sleep(1)
        finally:
            output = stop(daemon)
    lines = output.splitlines()
    assert any(line.startswith("DEBUG ") for line in lines), "it really logged at DEBUG"
    pieces = {token[i:i + 8] for i in range(len(token) - 7)}
    leaks = [line for line in lines if any(piece in line for piece in pieces)]
    assert leaks == [], leaks[:5]


async def test_a_broken_reload_keeps_the_call_and_says_so(janus, room_id, tmp_path, notify, engines):
    config = write_config(tmp_path, janus.url, room_id, auto_join=True)
    socket_path = str(tmp_path / "control.sock")
    remote, rec = engines(profile_for(janus))
    await remote.login_room(room_id, User("remote"))
    daemon = start_daemon(config, notify)
    try:
        await rec.wait_for(lambda: any(s.stream_id == "room-pi-main" for s in remote.streams), timeout=20,
                           what="in the room")
        good = config.read_text()
        config.write_bytes(good.encode() + b"\n[camera]\nfps = \xff\n")
        ready_before = len(notify.lines("READY=1"))
        daemon.send_signal(signal.SIGHUP)
        notify.wait_for(lambda: len(notify.lines("READY=1")) > ready_before, timeout=10)
        assert notify.lines("RELOADING=1")
        assert "reload refused" in notify.lines("STATUS=")[-1] and "In call" in notify.lines("STATUS=")[-1]
        status = json.loads(cli("status", "--json", "--socket", socket_path).stdout)
        assert status["state"] == "in call" and status["reload"]["ok"] is False
        assert "not UTF-8" in status["reload"]["error"] and str(config) in status["reload"]["error"]
        assert any(s.stream_id == "room-pi-main" for s in remote.streams), "still in the call"

        # A change to the camera is kept for the next restart, and said so.
        config.write_text(good.replace("fps = 15", "fps = 10", 1))
        daemon.send_signal(signal.SIGHUP)
        notify.wait_for(lambda: len(notify.lines("READY=1")) > ready_before + 1, timeout=10)
        status = json.loads(cli("status", "--json", "--socket", socket_path).stdout)
        assert status["reload"] == {"ok": True, "restart_needed": ["camera"]}
        assert "reload refused" not in notify.lines("STATUS=")[-1]
    finally:
        output = stop(daemon)
    assert "reload refused, the running configuration stays" in output
    assert "take effect at the next restart" in output and "Traceback" not in output
