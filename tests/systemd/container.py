"""A Debian 12 container booted with systemd as PID 1, for the unit's tests.

The cached root (``scripts/systemd-root``) is the lower layer of an overlay;
what a run changes goes to a folder of its own, so the cache stays as built.
``prepare()`` installs this checkout into that layer with ``install-pi`` (it
needs the package registries, so it runs before the private network
namespace); ``Container`` then boots it with ``systemd-nspawn -b
--private-network`` in a mount namespace of its own and runs commands in it
with ``nsenter``.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

from ..daemonkit import poll_until

ROOT = Path(__file__).resolve().parents[2]


def overlay_script(lower: Path, layer: Path) -> str:
    merged, upper, work = layer / "merged", layer / "upper", layer / "work"
    return (f"mkdir -p {merged} {upper} {work} && "
            f"mount -t overlay overlay -o lowerdir={lower},upperdir={upper},workdir={work} {merged}")


def prepare(lower: Path, layer: Path) -> None:
    """Copies the checkout into the layer and runs install-pi there (chrooted)."""
    script = f"""
        set -e
        {overlay_script(lower, layer)}
        rm -rf {layer}/merged/opt/appliance/appliance {layer}/merged/opt/appliance/tests
        tar -C {ROOT} --exclude=.git --exclude=.venv --exclude='*.egg-info' --exclude=__pycache__ \\
            --exclude=demo-screens -cf - . | tar -xf - -C {layer}/merged/opt/appliance
        {ROOT}/scripts/in-root {layer}/merged /opt/appliance/scripts/install-pi --without-pi-packages /opt/appliance
    """
    subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script], check=True,
                   stdout=subprocess.DEVNULL)


class Container:
    """A booted container; ``run()`` executes a command inside it."""

    def __init__(self, lower: Path, layer: Path, binds: tuple[str, ...] = ()) -> None:
        self.layer = layer
        nspawn = ["systemd-nspawn", "-D", str(layer / "merged"), "-b", "--private-network", "--register=no",
                  "--keep-unit", "-q", *(f"--bind-ro={b}" for b in binds)]
        # tmpfs over /run/systemd: the host's /run is on disk and nspawn would
        # leave its propagation folders behind (see shared/platform-notes.md).
        script = f"{overlay_script(lower, layer)} && mount -t tmpfs tmpfs /run/systemd && exec {shlex.join(nspawn)}"
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        layer.mkdir(parents=True, exist_ok=True)
        self.console = open(layer / "console.log", "w")
        self.process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "bash", "-c", script],
                                        stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        self.pid = self._init_pid()
        self.wait_until(lambda: self.run("systemctl", "is-system-running", check=False).stdout.strip()
                        in ("running", "degraded"), 60, "the container's systemd to come up")

    def _init_pid(self, timeout: float = 30) -> int:
        """The host PID of the container's PID 1 (systemd)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in subprocess.run(["ps", "-e", "-o", "pid=,ppid=,comm="], capture_output=True,
                                       text=True).stdout.splitlines():
                pid, ppid, comm = line.split(None, 2)
                if comm.strip() == "systemd" and self._descends(int(ppid)):
                    return int(pid)
            if self.process.poll() is not None:
                raise AssertionError(f"nspawn exited: {(self.layer / 'console.log').read_text()[-2000:]}")
            time.sleep(0.1)
        raise AssertionError("the container's systemd did not start")

    def _descends(self, pid: int) -> bool:
        while pid > 1:
            if pid == self.process.pid:
                return True
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                return False
        return False

    def run(self, *command: str, check: bool = True, timeout: float = 60, user: str | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Runs ``command`` inside the container (as ``user`` if given)."""
        inner = list(command) if user is None else ["runuser", "-u", user, "--", *command]
        result = subprocess.run(["nsenter", "-t", str(self.pid), "-a", "--", *inner], capture_output=True,
                                text=True, timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"{command} failed ({result.returncode}): {result.stdout[-1500:]}"
                                 f"{result.stderr[-1500:]}")
        return result

    def write(self, path: str, text: str, mode: int = 0o644, owner: str = "root:root") -> None:
        quoted = shlex.quote(path)
        self.run("bash", "-c", f"mkdir -p $(dirname {quoted}) && cat > {quoted} && chmod {mode:o} {quoted} "
                 f"&& chown {owner} {quoted}", input=text)

    def wait_until(self, predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
        poll_until(predicate, timeout, lambda: f"waiting for {what}", interval=0.3)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # nspawn powers the container off
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.console.close()
