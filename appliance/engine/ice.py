"""ICE settings: the configured servers only.

aiortc's default ``RTCConfiguration()`` uses a public STUN server; the engine
always passes the configured list, empty by default. Limiting host candidates
to chosen interfaces is :func:`~appliance.engine.aiortc_adapt.limit_host_interfaces`.

>>> rtc_configuration([]).iceServers
[]
>>> [s.urls for s in rtc_configuration([{"urls": "stun:stun.example.net"}]).iceServers]
['stun:stun.example.net']
"""

from __future__ import annotations

from collections.abc import Iterable

from aiortc import RTCConfiguration, RTCIceServer


def rtc_configuration(ice_servers: Iterable[dict[str, object]]) -> RTCConfiguration:
    """An aiortc configuration with exactly these ICE servers (none by default)."""
    return RTCConfiguration(iceServers=[RTCIceServer(**server) for server in ice_servers])
