"""The room model's enumerations: update types and the three state machines.

Room, publisher and player states are those of the room model; the reason for a
room state change (logging in, reconnecting, kicked out, ...) travels in the
event's ``extended_data["reason"]`` as a :class:`RoomStateReason`.
"""

from __future__ import annotations

from enum import Enum


class UpdateType(Enum):
    """What a user or stream update does to the list."""

    ADD = "add"
    DELETE = "delete"


class RoomState(Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"


class RoomStateReason(Enum):
    LOGGING_IN = "logging in"
    LOGGED_IN = "logged in"
    LOGIN_FAILED = "login failed"
    RECONNECTING = "reconnecting"
    RECONNECTED = "reconnected"
    RECONNECT_FAILED = "reconnect failed"
    KICKED_OUT = "kicked out"
    LOGGED_OUT = "logged out"


class PublisherState(Enum):
    NOT_PUBLISHING = "not publishing"
    REQUESTING = "requesting"
    PUBLISHING = "publishing"


class PlayerState(Enum):
    NOT_PLAYING = "not playing"
    REQUESTING = "requesting"
    PLAYING = "playing"
