"""The unit exactly as shipped, under a real systemd (252, PID 1 of a Debian 12
container with a private network), installed by install-pi."""

from __future__ import annotations

import json
import re
import time

from .conftest import CONFIG, configure, remote, start_janus
from .container import Container

# Prints each module of the installed package whose cached bytecode is missing
# or stale (a timestamp pyc's header holds its source's mtime and size).
UNCOMPILED = r"""
import importlib.util, pathlib, struct
for source in sorted(pathlib.Path("/opt/appliance/appliance").rglob("*.py")):
    cached, stat = pathlib.Path(importlib.util.cache_from_source(str(source))), source.stat()
    header = cached.read_bytes()[8:16] if cached.exists() else b""
    if header != struct.pack("<II", int(stat.st_mtime) & 0xFFFFFFFF, stat.st_size & 0xFFFFFFFF):
        print(source)
"""


def main_pid(box: Container) -> int:
    return int(box.run("systemctl", "show", "-p", "MainPID", "--value", "appliance").stdout.strip())


def status_text(box: Container) -> str:
    return box.run("systemctl", "status", "appliance", "--no-pager", check=False).stdout


def active(box: Container) -> bool:
    return box.run("systemctl", "is-active", "appliance", check=False).stdout.strip() == "active"


def test_the_shipped_unit_carries_a_call_and_behaves_as_a_service(container: Container):
    box = container
    start_janus(box)
    configure(box, "room-a")
    box.run("systemctl", "restart", "appliance")  # Type=notify: returns once READY=1 has arrived
    assert active(box), status_text(box)
    assert "active (running)" in status_text(box)
    # The hardened unit's system call filter lets it turn huge pages off (appliance/app/memory.py).
    assert "THP_enabled:\t0" in box.run("cat", f"/proc/{main_pid(box)}/status").stdout
    # The service cannot write under /opt/appliance: install-pi compiled the
    # package, or every start would compile it again.
    assert box.run("/opt/appliance/.venv/bin/python", "-c", UNCOMPILED).stdout == ""

    # Media both ways: a remote in the container receives the appliance's video
    # and tone, and the appliance plays the remote's stream.
    got = remote(box, "room-a", "--frames", "45")
    print("remote received:", got)
    assert got["video_frames"] >= 45 and got["audio_frames"] >= 50 and got["tone_hz"] == 440
    status = box.run("appliance", "status", "--json", user="root").stdout
    assert '"state": "in call"' in status

    # systemctl status shows STATUS=; the journal carries ROOM= and STREAM=.
    box.wait_until(lambda: 'Status: "In call: room-a' in status_text(box), 20, "STATUS= in systemctl status")
    verbose = box.run("journalctl", "-u", "appliance", "-o", "verbose", "--no-pager").stdout
    assert "ROOM=room-a" in verbose and re.search(r"STREAM=\S+", verbose), verbose[-2000:]

    # The admin socket: a member of the admin group may use it, others may not.
    box.run("useradd", "--groups", "appliance-admin", "alice")
    box.run("useradd", "bob")
    assert "In call" in box.run("appliance", "status", user="alice").stdout
    refused = box.run("appliance", "status", user="bob", check=False)
    assert refused.returncode == 69 and "Permission denied" in refused.stderr, refused.stderr

    # A reload to another room rejoins there, with media.
    configure(box, "room-b")
    box.run("systemctl", "reload", "appliance")
    got = remote(box, "room-b", "--frames", "20")
    assert got["video_frames"] >= 20, got
    box.wait_until(lambda: 'Status: "In call: room-b' in status_text(box), 20, "the new room on STATUS=")

    # A hung process (SIGSTOP) is killed by the watchdog and restarted.
    hung = main_pid(box)
    box.run("kill", "-STOP", str(hung))
    stopped_at = time.monotonic()
    box.wait_until(lambda: main_pid(box) not in (0, hung) and active(box), 40, "a restart by the watchdog")
    print(f"watchdog restart after {time.monotonic() - stopped_at:.1f} s")
    assert "Watchdog timeout" in box.run("journalctl", "-u", "appliance", "--no-pager").stdout

    # A clean stop: the remote sees the appliance's stream leave.
    box.run("bash", "-c", "/opt/appliance/.venv/bin/python /opt/appliance/tests/systemd/remote.py --room room-b "
            "--user watcher --until-gone --seconds 40 > /tmp/watch.json 2>&1 &")
    box.wait_until(lambda: '"present": true' in box.run("cat", "/tmp/watch.json", check=False).stdout, 30,
                   "the watcher seeing the appliance")
    box.run("systemctl", "stop", "appliance")
    box.wait_until(lambda: '"gone": true' in box.run("cat", "/tmp/watch.json", check=False).stdout, 30,
                   "the watcher seeing the stream go")
    assert box.run("systemctl", "show", "-p", "Result", "--value", "appliance").stdout.strip() == "success"
    journal = box.run("journalctl", "-u", "appliance", "--no-pager", "-o", "cat").stdout
    assert "Traceback" not in journal and "never retrieved" not in journal, journal[-3000:]


def test_a_token_file_that_is_empty_or_readable_by_all_stops_it_with_one_line(container: Container):
    box = container
    for content, mode, says in (("", 0o640, "is empty"), ("1,janus,janus.plugin.videoroom:c2ln\n", 0o644,
                                                          "readable by others")):
        box.write("/etc/appliance/token", content, mode, "root:appliance")
        configure(box, "room-a", token_file="/etc/appliance/token")
        box.run("systemctl", "reset-failed", "appliance", check=False)
        assert box.run("systemctl", "restart", "appliance", check=False).returncode != 0
        time.sleep(3)  # RestartSec=2: a restart loop would show by now
        show = box.run("systemctl", "show", "-p", "ExecMainStatus", "-p", "NRestarts", "-p", "ActiveState",
                       "appliance").stdout
        assert "ExecMainStatus=78" in show and "NRestarts=0" in show and "ActiveState=failed" in show, show
        invocation = box.run("systemctl", "show", "-p", "InvocationID", "--value", "appliance").stdout.strip()
        lines = box.run("journalctl", f"_SYSTEMD_INVOCATION_ID={invocation}", "_COMM=appliance", "-o", "cat",
                        "--no-pager").stdout.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and "/etc/appliance/token" in lines[0], lines


def test_with_an_alsa_microphone_the_audio_processing_runs_in_the_sandbox_and_the_unit_stops_cleanly(container: Container):
    """livekit's native module (threads of its own, a Rust runtime) under the
    unit's system call filter and device policy: it loads and processes, and
    the unit stops cleanly."""
    box = container
    start_janus(box)
    config = CONFIG.format(room="room-a", token="")
    config = config.replace('[microphone]\nsource = "tone"', '[microphone]\nsource = "alsa"\ndevice = "null"')
    config = config.replace("[speaker]\nenabled = false", '[speaker]\ndevice = "null"')
    assert 'device = "null"' in config and 'source = "alsa"' in config
    box.write("/etc/appliance/appliance.toml", config, 0o640, "root:appliance")
    box.run("systemctl", "restart", "appliance")
    got = remote(box, "room-a", "--frames", "30")
    assert got["audio_frames"] >= 50, got
    status = json.loads(box.run("appliance", "status", "--json", user="root").stdout)
    assert status["audio_processing"] is True and isinstance(status["microphone_level"], float), status
    journal = box.run("journalctl", "-u", "appliance", "--no-pager", "-o", "cat").stdout
    assert "audio processing" not in journal and "Traceback" not in journal, journal[-3000:]
    # And the stop ends it cleanly: exited with 0, not killed or dumped (end_process).
    box.run("systemctl", "stop", "appliance")
    shown = box.run("systemctl", "show", "-p", "Result", "-p", "ExecMainCode", "-p", "ExecMainStatus",
                    "appliance").stdout.split()
    assert sorted(shown) == ["ExecMainCode=1", "ExecMainStatus=0", "Result=success"], shown


def test_the_exposure_online_is_at_most_2(container: Container):
    out = container.run("systemd-analyze", "security", "appliance", "--no-pager").stdout
    level = float(re.search(r"Overall exposure level for appliance.service: (\d+\.\d+)", out).group(1))
    print(f"exposure {level}")
    assert level <= 2.0


# What a Pi's kernel shows in /proc/cpuinfo (Raspberry Pi OS, 64-bit).
CPUINFO = {
    "pi4": "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nRevision\t: c03114\n"
           "Serial\t\t: 10000000abcdef01\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
    "pi5": "processor\t: 0\nBogoMIPS\t: 108.00\n\nRevision\t: c04170\nSerial\t\t: abcdef0123456789\n"
           "Model\t\t: Raspberry Pi 5 Model B Rev 1.0\n",
}


def probe_in_the_units_sandbox(box: Container, board: str | None, extra: str = "") -> dict[str, str]:
    """Runs board_probe.py under exactly the sandbox of the installed unit.

    ``board``: a Pi's /proc/cpuinfo is bound over this machine's inside the
    probe's own mount namespace, after systemd has set up its /proc, which is
    where the service reads a real Pi's (this x86 kernel has no device tree to
    show, so the cpuinfo lines that gpiozero and the encoder choice fall back
    on stand for the board).
    """
    if board is not None:
        box.write(f"/var/lib/fakepi/{board}", CPUINFO[board])
    unit = box.run("cat", "/etc/systemd/system/appliance.service").stdout
    lines = [line for line in unit.splitlines()
             if not line.startswith(("Type=", "ExecStart=", "ExecReload=", "WatchdogSec=", "Restart"))]
    service = lines.index("[Service]") + 1
    lines[service:service] = [
        "Type=oneshot",
        "ExecStart=/opt/appliance/.venv/bin/python /opt/appliance/tests/systemd/board_probe.py",
        *([f"BindReadOnlyPaths=/var/lib/fakepi/{board}:/proc/cpuinfo"] if board else []),
        *([extra] if extra else []),
    ]
    box.write("/etc/systemd/system/appliance-probe.service", "\n".join(lines) + "\n")
    box.run("systemctl", "daemon-reload")

    def answers() -> list[str]:
        out = box.run("journalctl", "-u", "appliance-probe", "-o", "cat", "--no-pager").stdout
        return [line for line in out.splitlines() if line.startswith("{")]

    before = len(answers())
    box.run("systemctl", "start", "appliance-probe")
    box.wait_until(lambda: len(answers()) > before, 10, "the probe's answer in the journal")
    return json.loads(answers()[-1])


def test_inside_the_unit_a_pi_4_gets_the_hardware_encoder_and_a_pi_5_the_software_one(container: Container):
    pi4 = probe_in_the_units_sandbox(container, "pi4")
    pi5 = probe_in_the_units_sandbox(container, "pi5")
    print(pi4, pi5, sep="\n")
    assert pi4 == {"model": "Raspberry Pi 4 Model B Rev 1.4", "encoder": "hardware", "gpiozero": "4B"}
    assert pi5 == {"model": "Raspberry Pi 5 Model B Rev 1.0", "encoder": "software", "gpiozero": "5B"}


def test_the_old_units_proc_subset_hid_the_board(container: Container):
    """The unit as it was (ProcSubset=pid) has no /proc/cpuinfo (nor device tree) at
    all: on a Pi the probe found no board and chose the software encoder."""
    old = probe_in_the_units_sandbox(container, None, extra="ProcSubset=pid")
    print(old)
    assert old == {"model": "", "encoder": "software",
                   "gpiozero": "FileNotFoundError: [Errno 2] No such file or directory: '/proc/cpuinfo'"}
    assert "No such file" in container.run("systemd-run", "--wait", "--pipe", "-p", "ProcSubset=pid", "-p",
                                           "ProtectProc=invisible", "cat", "/proc/cpuinfo", check=False).stderr


def test_install_pi_ran_twice_and_uninstalls_what_it_added(container: Container):
    """install-pi ran when the root was built and again on this checkout
    (scripts/test-systemd): one user, its groups, `appliance` on PATH. Then
    --uninstall removes what it added and keeps /etc/appliance."""
    box = container
    assert box.run("grep", "-c", "^appliance:", "/etc/passwd").stdout.strip() == "1"
    assert box.run("readlink", "/usr/local/bin/appliance").stdout.strip() == "/opt/appliance/.venv/bin/appliance"
    assert "usage: appliance" in box.run("bash", "-lc", "appliance --help").stdout, "on an admin's PATH"
    assert box.run("stat", "-c", "%a %U:%G", "/etc/appliance").stdout.strip() == "750 root:appliance"
    box.run("/opt/appliance/scripts/install-pi", "--uninstall", "/opt/appliance")
    for gone in ("/usr/local/bin/appliance", "/etc/systemd/system/appliance.service", "/opt/appliance/.venv"):
        assert box.run("test", "-e", gone, check=False).returncode == 1, f"{gone} is still there"
    assert box.run("id", "appliance", check=False).returncode == 1
    assert box.run("getent", "group", "appliance-admin", check=False).returncode == 2
    assert box.run("test", "-f", "/etc/appliance/appliance.toml", check=False).returncode == 0, "config kept"
    assert box.run("systemctl", "show", "-p", "LoadState", "--value", "appliance").stdout.strip() == "not-found"
