"""`appliance devices` on this machine (nothing attached) and on a Pi-like tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from appliance.app.devices import report, survey


def test_devices_on_a_bare_machine_says_what_is_missing():
    result = subprocess.run([sys.executable, "-m", "appliance", "devices"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == ""
    for line in ("no camera found", "no sound card with a capture device",
                 "no sound card with a playback device", "no GPIO chip", "no display output"):
        assert line in result.stdout


def write(root: Path, path: str, text: str = "") -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_devices_on_a_pi_like_tree(tmp_path):
    write(tmp_path, "dev/video0")
    write(tmp_path, "sys/class/video4linux/video0/name", "HD Pro Webcam C920\n")
    write(tmp_path, "proc/asound/pcm",
          "00-00: bcm2835 HDMI 1 : bcm2835 HDMI 1 : playback 4\n"
          "01-00: USB Audio : Jabra SPEAK 510 : playback 1 : capture 1\n")
    write(tmp_path, "proc/asound/card0/id", "vc4hdmi0\n")
    write(tmp_path, "proc/asound/card1/id", "USB\n")
    write(tmp_path, "dev/gpiochip0")
    write(tmp_path, "sys/bus/gpio/devices/gpiochip0/label", "pinctrl-bcm2711\n")
    write(tmp_path, "sys/class/drm/card1-HDMI-A-1/status", "connected\n")
    write(tmp_path, "dev/fb0")
    write(tmp_path, "sys/class/graphics/fb0/name", "vc4drmfb\n")
    write(tmp_path, "sys/class/graphics/fb0/virtual_size", "1920,1080\n")
    sections = survey(tmp_path, cameras=None)
    text = report(sections)
    assert "/dev/video0" in text and "HD Pro Webcam C920" in text
    assert "plughw:CARD=USB,DEV=0" in text.split("Speakers")[0], "the speakerphone's microphone"
    assert "plughw:CARD=vc4hdmi0,DEV=0" in text.split("Speakers")[1] and "Jabra" in text.split("Speakers")[1]
    assert "/dev/gpiochip0" in text and "pinctrl-bcm2711" in text
    assert "kms:HDMI-A-1" in text and "connected" in text and "/dev/fb0" in text and "1920x1080" in text
    assert all(section.devices for section in sections), "nothing reported missing"
