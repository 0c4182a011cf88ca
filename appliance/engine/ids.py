"""ID rules of the room model, checked before anything goes on the wire.

Room, user and stream ids are non-empty strings of at most 128, 64 and 256
bytes, made of ASCII letters, digits and ``~!@#$%^&*()_+=-`;',.<>\\`` (the
room model's character set). ``:`` is not allowed: the engine uses it to name its
Janus participants (``u:<user_id>:<login>`` and ``s:<stream_id>``).
"""

from __future__ import annotations

import re

from .errors import EngineError, ErrorCode

_ALLOWED = re.compile(r"[A-Za-z0-9~!@#$%^&*()_+=\-`;',.<>\\]+")

ROOM_ID_MAX = 128
USER_ID_MAX = 64
STREAM_ID_MAX = 256
USER_NAME_MAX = 256


def _check(kind: str, value: object, limit: int, code: ErrorCode) -> str:
    if not isinstance(value, str) or not value:
        raise EngineError(code, f"{kind} must be a non-empty string, got {value!r}")
    size = len(value.encode())
    if size > limit:
        raise EngineError(code, f"{kind} {value[:40]!r}... is {size} bytes, the limit is {limit}")
    if not _ALLOWED.fullmatch(value):
        bad = sorted({c for c in value if not _ALLOWED.fullmatch(c)})
        raise EngineError(code, f"{kind} {value!r} has characters that are not allowed: {''.join(bad)!r}")
    return value


def check_room_id(room_id: object) -> str:
    return _check("room id", room_id, ROOM_ID_MAX, ErrorCode.INVALID_ROOM_ID)


def check_user_id(user_id: object) -> str:
    return _check("user id", user_id, USER_ID_MAX, ErrorCode.INVALID_USER_ID)


def check_stream_id(stream_id: object) -> str:
    return _check("stream id", stream_id, STREAM_ID_MAX, ErrorCode.INVALID_STREAM_ID)


def check_user_name(user_name: object) -> str:
    """User names are one line of printable text (may be empty) of at most 256 bytes."""
    if not isinstance(user_name, str) or len(user_name.encode()) > USER_NAME_MAX or not user_name.isprintable():
        raise EngineError(ErrorCode.INVALID_USER_ID,
                          f"user name must be one line of printable text of at most {USER_NAME_MAX} bytes")
    return user_name
