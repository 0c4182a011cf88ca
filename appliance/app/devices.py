"""``appliance devices``: what this machine has for the appliance to use.

Lists cameras (libcamera's list when picamera2 can use it, ``/dev/video*``
otherwise), ALSA capture and playback devices, GPIO chips and display outputs,
each with the name the configuration would use, and says plainly what is
missing. Reads only ``/proc``, ``/sys`` and ``/dev``; opens no device.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Device:
    kind: str  # camera, microphone, speaker, gpio, display
    name: str  # what the configuration calls it
    description: str


@dataclass(frozen=True)
class Section:
    title: str
    devices: list[Device]
    missing: str  # said when ``devices`` is empty


_PCM_LINE = re.compile(r"(\d+)-(\d+): ([^:]*) : ([^:]*)(.*)")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def libcamera_cameras() -> list[Device] | None:
    """Cameras libcamera sees, or None when picamera2/libcamera are not installed."""
    try:
        from picamera2 import Picamera2  # only on a Pi (python3-picamera2)
    except ImportError:
        return None
    try:
        cameras = Picamera2.global_camera_info()
    except Exception:  # a stubbed or broken libcamera
        return None
    return [
        Device("camera", f"pi:{info.get('Num', n)}", f"{info.get('Model', '?')} ({info.get('Id', '?')})")
        for n, info in enumerate(cameras)
    ]


def v4l2_cameras(root: Path) -> list[Device]:
    found = []
    for node in sorted((root / "dev").glob("video[0-9]*"), key=lambda p: (len(p.name), p.name)):
        name = _read(root / "sys/class/video4linux" / node.name / "name") or "unknown"
        found.append(Device("camera", f"/dev/{node.name}", name))
    return found


def alsa_devices(root: Path) -> tuple[list[Device], list[Device]]:
    """(capture, playback) devices from ``/proc/asound/pcm``."""
    capture, playback = [], []
    for line in _read(root / "proc/asound/pcm").splitlines():
        match = _PCM_LINE.match(line)
        if not match:
            continue
        card, device, _, name, directions = int(match[1]), int(match[2]), match[3], match[4].strip(), match[5]
        card_id = _read(root / f"proc/asound/card{card}/id") or str(card)
        config_name = f"plughw:CARD={card_id},DEV={device}"
        if "capture" in directions:
            capture.append(Device("microphone", config_name, name))
        if "playback" in directions:
            playback.append(Device("speaker", config_name, name))
    return capture, playback


def gpio_chips(root: Path) -> list[Device]:
    return [
        Device("gpio", f"/dev/{chip.name}", _read(root / "sys/bus/gpio/devices" / chip.name / "label") or "gpio chip")
        for chip in sorted((root / "dev").glob("gpiochip*"))
    ]


def displays(root: Path) -> list[Device]:
    found = []
    for connector in sorted((root / "sys/class/drm").glob("card*-*")):
        status = _read(connector / "status") or "unknown"
        found.append(Device("display", f"kms:{connector.name.split('-', 1)[1]}", f"DRM connector, {status}"))
    for fb in sorted((root / "dev").glob("fb[0-9]*")):
        info = root / "sys/class/graphics" / fb.name
        size = _read(info / "virtual_size").replace(",", "x")
        found.append(Device("display", f"/dev/{fb.name}", f"framebuffer {_read(info / 'name')} {size}".strip()))
    return found


def survey(root: Path = Path("/"), cameras: list[Device] | None = None) -> list[Section]:
    """Everything the appliance could use on this machine, by kind."""
    if cameras is None:
        cameras = (libcamera_cameras() or []) + v4l2_cameras(root)
    capture, playback = alsa_devices(root)
    return [
        Section("Cameras", cameras, "no camera found (libcamera lists none, no /dev/video*)"),
        Section("Microphones (ALSA capture)", capture, "no sound card with a capture device"),
        Section("Speakers (ALSA playback)", playback, "no sound card with a playback device"),
        Section("GPIO", gpio_chips(root), "no GPIO chip (/dev/gpiochip*): buttons and LEDs cannot work here"),
        Section("Displays", displays(root), "no display output (no KMS connector, no /dev/fb*)"),
    ]


def report(sections: list[Section]) -> str:
    lines = []
    for section in sections:
        lines.append(f"{section.title}:")
        if not section.devices:
            lines.append(f"  {section.missing}")
        for device in section.devices:
            lines.append(f"  {device.name:<32} {device.description}")
    return "\n".join(lines)
