"""ICE uses only the configured servers and, when asked, only named interfaces."""

from __future__ import annotations

import re

from aiortc import RTCPeerConnection

from appliance.engine.aiortc_adapt import limit_host_interfaces
from appliance.engine.ice import rtc_configuration


async def host_candidates() -> set[str]:
    pc = RTCPeerConnection(rtc_configuration([]))
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    assert "srflx" not in sdp, "no STUN server was asked"
    return set(re.findall(r"a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ host", sdp))


async def test_candidates_limited_to_named_interfaces():
    try:
        assert await host_candidates() >= {"10.231.0.1", "10.231.0.2"}
        limit_host_interfaces(["v1"])
        assert await host_candidates() == {"10.231.0.2"}
    finally:
        limit_host_interfaces([])
    assert await host_candidates() >= {"10.231.0.1", "10.231.0.2"}


def test_no_ice_servers_by_default():
    assert rtc_configuration([]).iceServers == []
