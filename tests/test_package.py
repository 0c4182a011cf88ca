"""The package's shape: which layer may import which, and what each layer exports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "appliance"
LAYERS = ("engine", "media", "screen", "app", "testing")
# What each layer may import from this package besides itself: the engine is a
# library of its own; devices and the screen sit beside each other on it.
ALLOWED = {
    "engine": set(),
    "media": {"engine"},
    "screen": {"engine"},
    "app": {"engine", "media", "screen", "testing"},
    "testing": {"engine", "media", "screen", "app"},
}


def imported_layers(layer: str, source: str) -> set[str]:
    """The other layers that ``source``, a module of ``layer``, imports (relative or absolute)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from .x: the file's own layer
                names = [f"appliance.{layer}"]
            elif node.level == 2:  # from ..x.y / from .. import x
                names = [f"appliance.{node.module}"] if node.module else [f"appliance.{a.name}" for a in node.names]
            elif node.module and node.module.startswith("appliance"):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names if node.module == "appliance"]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("appliance")]
        for name in names:
            parts = name.split(".")
            if len(parts) > 1 and parts[1] in LAYERS:
                found.add(parts[1])
    return found - {layer}


def test_the_five_layers_exist():
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(LAYERS)
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py"]


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_go_only_downwards(layer):
    wrong = {
        str(path.relative_to(PACKAGE)): sorted(imported_layers(layer, path.read_text()) - ALLOWED[layer])
        for path in (PACKAGE / layer).rglob("*.py")
    }
    assert {k: v for k, v in wrong.items() if v} == {}


def test_the_checker_sees_upward_imports():
    """The rule above can fail: every spelling of an upward import is caught."""
    sample = (
        "from ..app.config import load_config\nimport appliance.screen.compositor\n"
        "from appliance import testing\nfrom .. import media\nfrom . import errors\nimport os\n"
    )
    assert imported_layers("engine", sample) == {"app", "screen", "testing", "media"}


def test_the_engine_imports_nothing_else_at_run_time():
    """Importing the engine loads no module of the other layers (nor any test helper)."""
    code = (
        "import sys, appliance.engine\n"
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('appliance.') and m.count('.') >= 1}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['engine']"


def test_the_engine_exports_its_api_and_no_test_helpers():
    import appliance
    import appliance.engine as engine

    for name in ("Engine", "EngineProfile", "User", "Stream", "RoomConfig", "ErrorCode", "EngineError",
                 "RoomState", "PublisherState", "PlayerState", "UpdateType", "StreamQuality", "EVENTS",
                 "EncodedVideoSource", "AudioSource", "VideoSink", "AudioSink"):
        assert hasattr(engine, name), name
    assert set(engine.__all__) <= set(dir(engine))
    assert not {"TestPatternSource", "ToneSource", "LocalJanus", "read_stamp"} & set(dir(appliance))
    assert not {"TestPatternSource", "ToneSource", "LocalJanus", "read_stamp"} & set(engine.__all__)
