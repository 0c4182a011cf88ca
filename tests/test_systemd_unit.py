"""The systemd unit: clean for systemd-analyze verify, exposure at most 2.0."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def unit(tmp_path) -> Path:
    # As scripts/install-pi installs it: the install prefix substituted.
    path = tmp_path / "appliance.service"
    path.write_text((ROOT / "systemd" / "appliance.service").read_text().replace("/opt/appliance", str(ROOT)))
    return path


def test_verify_prints_nothing(unit):
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_security_exposure_at_most_2(unit):
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)], capture_output=True, text=True)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-500:]
    print(f"exposure {match.group(1)}")
    assert float(match.group(1)) <= 2.0


def test_unit_is_notify_with_watchdog_reload_and_credential():
    text = (ROOT / "systemd" / "appliance.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "ExecReload=", "Restart=on-failure", "RestartPreventExitStatus=78"):
        assert line in text
