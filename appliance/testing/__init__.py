"""Synthetic parts for the demo, the tests and the benchmarks.

A test-pattern camera whose pictures carry a readable stamp, a tone
microphone, a local Janus run from the project's configuration, the demo, and
the browser page with the small server that serves it. None of it is needed
on a deployed appliance.
"""

from .janus_server import LocalJanus
from .testpattern import Stamp, TestPatternSource, read_stamp
from .tone import ToneSource, dominant_frequency

__all__ = ["LocalJanus", "Stamp", "TestPatternSource", "ToneSource", "dominant_frequency", "read_stamp"]
