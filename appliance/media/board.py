"""Which board this is, and so which H.264 encoder the Pi camera uses.

The model is read where a Raspberry Pi's kernel puts it: the device tree
(``/proc/device-tree/model``), or else the ``Model`` line of ``/proc/cpuinfo``
(both visible inside the appliance's systemd sandbox; ``ProcSubset=pid``
would hide them). gpiozero reads the same two places for its board revision.

>>> choose_encoder("auto", "Raspberry Pi 4 Model B Rev 1.4")
'hardware'
>>> choose_encoder("auto", "Raspberry Pi 5 Model B Rev 1.0")
'software'
>>> _ = (tmp / "cpuinfo").write_text("Hardware\\t: BCM2835\\nRevision\\t: c03114\\nModel\\t\\t: Raspberry Pi 4 Model B Rev 1.4\\n")
>>> board_model(tmp / "no-device-tree", tmp / "cpuinfo")
'Raspberry Pi 4 Model B Rev 1.4'
"""

from __future__ import annotations

from pathlib import Path

ENCODER_MODES = ("auto", "hardware", "software")


def board_model(device_tree: Path = Path("/proc/device-tree/model"), cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The board's model string (``Raspberry Pi 4 Model B Rev 1.4``), or ``""``."""
    try:
        return device_tree.read_bytes().rstrip(b"\0").decode(errors="replace")
    except OSError:
        pass
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model":
                return value.strip()
    except OSError:
        pass
    return ""


def choose_encoder(mode: str, model: str | None = None) -> str:
    """``hardware`` or ``software`` for a configured ``auto|hardware|software``."""
    if mode not in ENCODER_MODES:
        raise ValueError(f"encoder must be one of {', '.join(ENCODER_MODES)}, not {mode!r}")
    if mode != "auto":
        return mode
    model = board_model() if model is None else model
    # The Pi 5 (and anything that is not a Pi) has no V4L2 H.264 encoder.
    has_hardware = model.startswith("Raspberry Pi") and "Raspberry Pi 5" not in model
    return "hardware" if has_hardware else "software"
