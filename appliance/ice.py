"""ICE settings: the configured servers only, and optional interface limits.

aiortc's default ``RTCConfiguration()`` uses a public STUN server; the engine
always passes the configured list, empty by default. aioice gathers host
candidates on every interface; an appliance with several (LAN, VPN, Wi-Fi)
often must use only one, so the engine can limit them by interface name.
"""

from __future__ import annotations

from collections.abc import Iterable

import aioice.ice
import ifaddr
from aiortc import RTCConfiguration, RTCIceServer

_original_get_host_addresses = aioice.ice.get_host_addresses
_allowed: frozenset[str] = frozenset()


def rtc_configuration(ice_servers: Iterable[dict[str, object]]) -> RTCConfiguration:
    """An aiortc configuration with exactly these ICE servers (none by default)."""
    return RTCConfiguration(iceServers=[RTCIceServer(**server) for server in ice_servers])


def _addresses_on_allowed_interfaces(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    found = set(_original_get_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6))
    on_allowed = {
        ip.ip if isinstance(ip.ip, str) else ip.ip[0]
        for adapter in ifaddr.get_adapters()
        if adapter.nice_name in _allowed
        for ip in adapter.ips
    }
    return [address for address in found if address in on_allowed]


def limit_host_interfaces(names: Iterable[str]) -> None:
    """Gathers host candidates only on ``names``; an empty list lifts the limit.

    aioice has no option for this, so its module-level address lookup is
    replaced for this process (the appliance runs one engine configuration).
    """
    global _allowed
    _allowed = frozenset(names)
    aioice.ice.get_host_addresses = (
        _addresses_on_allowed_interfaces if _allowed else _original_get_host_addresses
    )
