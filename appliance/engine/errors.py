r"""Named error codes of the engine, and the exception that carries one.

Every failure the engine reports (in a state event's ``error_code`` or as a
return value) is one of :class:`ErrorCode`; ``0`` means success, as in the
room model. An :class:`EngineError`'s message is one printable line, whatever
text (a server's error, say) went into it, so it can go to a screen, a log or
systemd as it is.

>>> str(EngineError(ErrorCode.SERVER_ERROR, "janus error 490:\nWATCHDOG=trigger\x1b[2J"))
'janus error 490: WATCHDOG=trigger [2J (SERVER_ERROR)'
"""

from __future__ import annotations

from enum import IntEnum

MAX_TEXT = 200


def one_line(text: object, limit: int = MAX_TEXT) -> str:
    r"""``text`` as one printable line of at most ``limit`` characters.

    Line breaks and other control characters become spaces (runs of them one
    space); a longer text is cut and ends with an ellipsis.

    >>> one_line("refused\r\nSTATUS=evil\x00")
    'refused STATUS=evil'
    >>> one_line("x" * 300, 10)
    'xxxxxxxxx…'
    """
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in str(text)).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


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


# The codes that say a server could not be reached (or not for long enough),
# as opposed to one that answered and refused.
UNREACHABLE = frozenset({ErrorCode.SERVER_UNREACHABLE, ErrorCode.NETWORK_INTERRUPTED, ErrorCode.REQUEST_TIMEOUT,
                         ErrorCode.SESSION_LOST})


class EngineError(Exception):
    """A failure with a named :class:`ErrorCode` and a one-line explanation."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        message = one_line(message)
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} ({self.code.name})"
