"""Which of several Janus servers holds a room: rendezvous hashing.

Every participant orders the servers for a room the same way, by the
*highest random weight* of the pair (server URL, room id), so all of them
look in the same places in the same order without talking to each other.
Removing a server moves only the rooms it held; adding one takes about its
share. The weight is FNV-1a (32 bits) over the UTF-8 bytes of
``url + "\\n" + room_id``, mixed by MurmurHash3's finaliser; ties go to the
smaller URL. The web page (``appliance/testing/web/servers.js``) computes
the same order: every participant must list the same URLs, written the same
way.

Where a room goes, given the order (see :class:`~.room.Room`): the first
server on which it exists with participants in it, else the first on which
it exists at all, else the first that answers (where it is created).

>>> server_order("board-room", ["ws://janus-a:8188/", "ws://janus-b:8188/"])
['ws://janus-b:8188/', 'ws://janus-a:8188/']
>>> server_order("lobby", ["ws://janus-a:8188/", "ws://janus-b:8188/"])
['ws://janus-a:8188/', 'ws://janus-b:8188/']
"""

from __future__ import annotations

from collections.abc import Iterable

_MASK = 0xFFFFFFFF


def weight(url: str, room_id: str) -> int:
    """The server's 32-bit weight for the room.

    >>> weight("ws://janus-a:8188/", "lobby")
    3960646241
    """
    value = 0x811C9DC5
    for byte in f"{url}\n{room_id}".encode():
        value = ((value ^ byte) * 0x01000193) & _MASK
    value ^= value >> 16
    value = (value * 0x85EBCA6B) & _MASK
    value ^= value >> 13
    value = (value * 0xC2B2AE35) & _MASK
    return value ^ (value >> 16)


def server_order(room_id: str, urls: Iterable[str]) -> list[str]:
    """The servers in the order the room uses them, highest weight first."""
    return sorted(urls, key=lambda url: (-weight(url, room_id), url))
