"""The private network namespace the demo, the tests and the benchmarks run in.

``scripts/netns`` makes it: only ``lo`` and a veth pair, ``v0`` (10.231.0.1)
and ``v1`` (10.231.0.2), so nothing routes out of it. Janus skips loopback
when it gathers ICE candidates, so it is told to use ``v0``.

>>> sorted(INTERFACES), JANUS_INTERFACE
(['lo', 'v0', 'v1'], 'v0')
"""

from __future__ import annotations

import socket

INTERFACES = frozenset({"lo", "v0", "v1"})
JANUS_INTERFACE = "v0"


def inside() -> bool:
    """True when this process runs in that namespace (and nothing else is reachable)."""
    return {name for _, name in socket.if_nameindex()} == INTERFACES
