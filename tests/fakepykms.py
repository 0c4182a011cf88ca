"""kms++'s Python API (``pykms``), faked at the display hardware: the names and
calls are those of kms++'s own ``py/tests/test.py``; dumb buffers are memfds
that the test can read back, and commits are recorded."""

from __future__ import annotations

import os
import sys
import types
from typing import Any

STRIDE_PADDING = 64


class Mode:
    hdisplay, vdisplay = 320, 180

    def to_blob(self, card: Card) -> str:
        return "mode-blob"


class Connector:
    def get_default_mode(self) -> Mode:
        return Mode()


class Card:
    def __init__(self) -> None:
        self.commits: list[dict[str, Any]] = []

    @classmethod
    def open_modesetting_card(cls) -> Card:
        card = cls()
        module.cards.append(card)
        return card


class ResourceManager:
    def __init__(self, card: Card) -> None:
        self.card = card

    def reserve_connector(self, name: str = "") -> Connector:
        return Connector()

    def reserve_crtc(self, connector: Connector) -> str:
        return "crtc"

    def reserve_generic_plane(self, crtc: str) -> str:
        return "plane"


class DumbFramebuffer:
    def __init__(self, card: Card, width: int, height: int, fourcc: str) -> None:
        assert fourcc == "XR24"
        self.width, self.height = width, height
        self._stride = width * 4 + STRIDE_PADDING
        self._fd = os.memfd_create("dumb")
        os.ftruncate(self._fd, self._stride * height)

    def fd(self, plane: int) -> int:
        return self._fd

    def stride(self, plane: int) -> int:
        return self._stride

    def read(self) -> bytes:
        return os.pread(self._fd, self._stride * self.height, 0)


class AtomicReq:
    def __init__(self, card: Card) -> None:
        self.card = card
        self.items: dict[str, Any] = {}

    def add_connector(self, connector: Connector, crtc: str) -> None:
        self.items["connector"] = crtc

    def add_crtc(self, crtc: str, mode: str) -> None:
        self.items["mode"] = mode

    def add_plane(self, plane: str, fb: DumbFramebuffer, crtc: str, dst: tuple[int, int, int, int]) -> None:
        self.items["plane"] = (plane, fb, crtc, dst)

    def commit_sync(self, allow_modeset: bool = False) -> None:
        self.card.commits.append(dict(self.items, allow_modeset=allow_modeset))


module = types.ModuleType("pykms")
module.Card = Card  # type: ignore[attr-defined]
module.ResourceManager = ResourceManager  # type: ignore[attr-defined]
module.DumbFramebuffer = DumbFramebuffer  # type: ignore[attr-defined]
module.AtomicReq = AtomicReq  # type: ignore[attr-defined]
module.cards = []  # type: ignore[attr-defined]


def install() -> types.ModuleType:
    sys.modules["pykms"] = module
    return module
