"""The engine's value types: the engine profile, users, streams, room config.

>>> profile = EngineProfile(server="ws://127.0.0.1:8188/")
>>> profile.ice_servers, profile.room_video_codec
((), 'h264,vp8')
>>> RoomConfig(is_user_status_notify=True, token="never shown")
RoomConfig(is_user_status_notify=True)
>>> Stream("alice-share", User("alice")).is_share, Stream("alice-main", User("alice")).is_share
(True, False)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class User:
    """A user of the room: ``user_id`` is unique and never empty."""

    user_id: str
    user_name: str = ""


# A stream whose id ends so is content (a shared screen, window or tab), not a
# camera: the convention every client of the room follows (docs/architecture.md).
SHARE_SUFFIX = "-share"


@dataclass(frozen=True)
class Stream:
    """A stream published in the room, with the user who publishes it."""

    stream_id: str
    user: User
    extra_info: str = ""

    @property
    def is_share(self) -> bool:
        """Whether this is a content share (its id ends in ``-share``) rather than a camera."""
        return self.stream_id.endswith(SHARE_SUFFIX)


@dataclass(frozen=True)
class RoomConfig:
    """Per-login options, as the room model's room config.

    ``is_user_status_notify`` turns on ``room_user_update`` events (off by
    default, as in the room model). ``token`` is the signed token the server checks;
    ``pin`` the room's PIN, when its admins gave it one (a room this login
    creates gets it too). Neither is ever logged or shown in ``repr``.
    """

    is_user_status_notify: bool = False
    token: str | None = field(default=None, repr=False)
    pin: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class EngineProfile:
    """How the engine reaches its room service.

    ``server`` is the Janus WebSocket URL, or a tuple of several: each room
    then lives on one of them, chosen by rendezvous hashing of its id (see
    :mod:`.servers`), and moves to the next when that one is lost. ``ice_servers`` is the list of
    STUN/TURN servers (aiortc ``RTCIceServer`` keyword dicts), empty by default:
    the appliance never contacts a public STUN server unless configured to.
    ``ice_interfaces``, when set, limits ICE host candidates to those network
    interfaces. ``room_ids`` is the kind of room ids the server uses:
    ``"string"``, ``"number"`` or ``"auto"`` (learned on first contact). Room
    creation options (codecs, size) apply when a login creates the room.
    """

    server: str | tuple[str, ...]
    room_ids: str = "auto"
    ice_servers: tuple[dict[str, object], ...] = ()
    ice_interfaces: tuple[str, ...] = ()
    request_timeout: float = 10.0
    keepalive_interval: float = 25.0
    # A lost socket is noticed within ping_interval + ping_timeout.
    ping_interval: float = 5.0
    ping_timeout: float = 5.0
    reconnect_min_delay: float = 0.25
    reconnect_max_delay: float = 8.0
    # 0 means keep trying for ever: an appliance never gives up on its room.
    reconnect_timeout: float = 0.0
    quality_interval: float = 3.0
    room_video_codec: str = "h264,vp8"
    room_audio_codec: str = "opus"
    room_h264_profile: str = "42e01f"
    room_max_publishers: int = 64
    # Janus VideoRoom admin_key, when the server restricts room creation.
    room_admin_key: str | None = field(default=None, repr=False)

    @property
    def servers(self) -> tuple[str, ...]:
        """Every server URL, one or several.

        >>> EngineProfile(server=("ws://janus-a:8188/", "ws://janus-b:8188/")).servers[1]
        'ws://janus-b:8188/'
        """
        return (self.server,) if isinstance(self.server, str) else tuple(self.server)
