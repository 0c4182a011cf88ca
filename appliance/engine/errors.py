"""Named error codes of the engine, and the exception that carries one.

Every failure the engine reports (in a state event's ``error_code`` or as a
return value) is one of :class:`ErrorCode`; ``0`` means success, as in the
seeds' SDK.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    SUCCESS = 0
    # Bad input, found before anything is sent.
    INVALID_ROOM_ID = 1001
    INVALID_USER_ID = 1002
    INVALID_STREAM_ID = 1003
    INVALID_PARAMETER = 1004
    # Call order.
    NOT_LOGGED_IN = 1101
    ALREADY_LOGGED_IN = 1102
    ALREADY_PUBLISHING = 1103
    ALREADY_PLAYING = 1104
    # Server and network.
    SERVER_UNREACHABLE = 2001
    NETWORK_INTERRUPTED = 2002
    REQUEST_TIMEOUT = 2003
    SESSION_LOST = 2004
    SERVER_ERROR = 2005
    MEDIA_CONNECTION_FAILED = 2006
    PROTOCOL_ERROR = 2007
    # Credentials.
    AUTH_FAILED = 3001
    # Room model.
    KICKED_OUT = 4001
    STREAM_ID_IN_USE = 4002
    STREAM_NOT_FOUND = 4003
    STREAM_DELETED = 4004
    ROOM_FULL = 4005
    CODEC_NOT_SUPPORTED = 4006


class EngineError(Exception):
    """A failure with a named :class:`ErrorCode` and a one-line explanation."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} ({self.code.name})"
