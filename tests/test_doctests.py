"""Every docstring example in the package runs, as a doctest.

Examples that need a server use ``janus_url`` (the suite's Janus) and ones
that write files use ``tmp`` (a fresh folder); nothing else is given to them.
"""

from __future__ import annotations

import doctest
import importlib
import io
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "appliance"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


WITH_EXAMPLES = sorted(module_name(p) for p in PACKAGE.rglob("*.py") if ">>> " in p.read_text())


def test_examples_are_doctests_and_most_modules_have_one():
    assert not [p for p in PACKAGE.rglob("*.py") if "Example::" in p.read_text()], "an example that does not run"
    assert len(WITH_EXAMPLES) >= 30


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_examples_run(name, janus, tmp_path):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    globs = {**vars(module), "janus_url": janus.url, "tmp": tmp_path}
    tests = doctest.DocTestFinder().find(module, name, globs=globs)
    examples = 0
    for test in tests:
        examples += len(test.examples)
        runner.run(test, out=out.write)
    assert examples, f"{name} has no example"
    assert runner.failures == 0, out.getvalue()
